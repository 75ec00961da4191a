import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadModelSet } from '../models/loader';
import { allowedCores } from '../runtime/cpu-budget';
import { ServedModel } from '../serving/served-model';
import { UserError } from '../util/errors';
import type { Config } from './config';
import type { Metrics } from './metrics';

/**
 * One model set from the models folder, verified (every sha256) and ready to
 * serve. Start-up and model control (POST /v2/repository/models/{name}/load)
 * both load through here, so a set is checked the same way either way.
 */
export async function loadServedModel(config: Config, metrics: Metrics, logger: Logger, name: string, threads = inferenceThreads(config)): Promise<ServedModel> {
  const dir = join(config.modelsDir, name);
  const set = await loadModelSet(dir);
  if (set.name !== name) throw new UserError(`${dir}/manifest.json names the set '${set.name}'; the folder must have the same name`);
  const model = await ServedModel.load(set, {
    provider: config.provider,
    intraOpThreads: threads,
    workers: config.inferenceWorkers,
    nice: config.inferenceNice,
    batcher: { maxBatch: config.maxBatch, maxDelayMs: config.maxDelayMs, queueLimit: config.queueLimit, maxQueueWaitMs: config.maxQueueWaitMs },
    noise: { kind: config.noiseKind, sigma: config.noise, maxSigma: config.noiseMax },
    logger: logger.child({ model: name }),
    observer: metrics.batcherObserver(name),
  });
  metrics.addModel(model.name, model.version, model.provider);
  logger.info(
    { model: model.name, version: model.version, provider: model.provider, workers: config.inferenceWorkers, threadsPerWorker: threads, inferenceNice: config.inferenceNice, chain: set.manifest.defence.chain.map((s) => s.stage), noise: model.noise, threshold: model.threshold },
    'model set loaded (sha256 verified)',
  );
  return model;
}

/**
 * ONNX Runtime threads per inference worker: the configured number, or the
 * cores the process may use (the container's CPU limit) shared among the
 * workers. On CUDA the threads only feed the GPU; one is enough.
 */
export function inferenceThreads(config: Pick<Config, 'threads' | 'inferenceWorkers'>, cores = allowedCores()): number {
  if (config.threads > 0) return config.threads;
  return Math.max(1, Math.floor(cores / config.inferenceWorkers));
}
