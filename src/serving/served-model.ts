import * as ort from 'onnxruntime-node';
import { loadModel } from '../onnx/io';
import type { Graph } from '../onnx/graph';
import type { Feed, RuntimeLogger } from '../runtime/session';
import type { Provider, ProviderChoice } from '../runtime/providers';
import { InferencePool, WorkerSession } from '../runtime/worker/inference-pool';
import type { ModelSet } from '../models/loader';
import type { Manifest } from '../models/manifest';
import { UserError } from '../util/errors';
import { Batcher, BatcherObserver, BatcherOptions } from './batcher';
import { buildServingGraph } from './graph';
import { Geometry, geometryOf } from './image';
import { NoisePolicy, fillNoise } from './noise';

/** The serving graph's name in the inference workers. */
export const SERVING_GRAPH = 'serving';

/** One image on its way through the serving graph. */
export interface ImageJob {
  /** C·H·W floats in [0,1] */
  pixels: Float32Array;
  /** noise sigma for this image (already resolved against the operator policy) */
  sigma: number;
  /** whether the caller wants the defended image back */
  reconstruction: boolean;
}

export interface ImageResult {
  /** softmax of the defended path, one value per label */
  probs: Float32Array;
  /** KL(clean ‖ defended) */
  score: number;
  reconstruction?: Float32Array;
}

export interface ServeOptions {
  provider: ProviderChoice;
  /** ONNX Runtime intra-op threads per worker's session (resolve 0 with inferenceThreads() first) */
  intraOpThreads: number;
  /** inference worker threads, each with its own session; batches run on them in parallel */
  workers?: number;
  /** nice steps below the process for the inference threads (0–19; see InferencePoolOptions.nice) */
  nice?: number;
  batcher: BatcherOptions;
  /** operator overrides of the manifest's noise policy */
  noise?: Partial<NoisePolicy>;
  logger?: RuntimeLogger;
  observer?: BatcherObserver;
}

/**
 * A model set ready to serve: its composed serving graph in a session on
 * each inference worker thread, the batcher in front of them, and what the
 * routes need to describe it. Other graphs of the set (e.g. certification's)
 * can be loaded into the same workers with loadGraph() and run with
 * runGraph(), so no graph ever runs on the event loop.
 */
/** The graph a set is served with: its classifier behind the models its defence chain names, loaded from the set's files. */
export function loadServingGraph(set: ModelSet): Graph {
  const graphs: Record<string, Graph> = { classifier: loadModel(set.paths.classifier) };
  for (const s of set.manifest.defence.chain) {
    if ((s.stage === 's2snet' || s.stage === 'autoencoder') && !graphs[s.stage]) graphs[s.stage] = loadModel(set.paths[s.stage]);
  }
  return buildServingGraph(set.manifest, graphs);
}

export class ServedModel {
  readonly name: string;
  readonly version: string;
  readonly geometry: Geometry;
  readonly labels: readonly string[];
  readonly threshold: number;
  readonly batcher: Batcher<ImageJob, ImageResult>;
  private readonly hasNoiseInput: boolean;

  private constructor(
    readonly manifest: Manifest,
    readonly session: WorkerSession,
    readonly noise: NoisePolicy,
    batcherOptions: BatcherOptions,
    observer?: BatcherObserver,
  ) {
    this.name = manifest.name;
    this.version = manifest.version;
    this.geometry = geometryOf(manifest.input);
    this.labels = manifest.labels;
    this.threshold = manifest.detection.threshold;
    this.hasNoiseInput = session.inputNames.includes('noise');
    this.batcher = new Batcher((jobs) => this.runBatch(jobs), { concurrency: session.pool.size, ...batcherOptions }, observer);
  }

  static async load(set: ModelSet, opts: ServeOptions): Promise<ServedModel> {
    const m = set.manifest;
    const graph = loadServingGraph(set);
    const hasNoiseStage = m.defence.chain.some((s) => s.stage === 'noise');
    const noise = resolveNoisePolicy(m, opts.noise, hasNoiseStage);
    const pool = new InferencePool({ workers: opts.workers ?? 1, logger: opts.logger, nice: opts.nice });
    try {
      const session = await pool.load(SERVING_GRAPH, graph, {
        provider: opts.provider,
        intraOpThreads: opts.intraOpThreads,
        label: `${m.name}@${m.version}`,
        // Spinning ORT threads would take the cores that decoding and the event loop need between batches.
        allowSpinning: false,
      });
      return new ServedModel(m, session, noise, opts.batcher, opts.observer);
    } catch (e) {
      await pool.close();
      throw e;
    }
  }

  get provider(): Provider {
    return this.session.provider;
  }

  get imageSize(): number {
    return this.geometry.channels * this.geometry.height * this.geometry.width;
  }

  /** One session run for a batch of images. */
  async runBatch(jobs: ImageJob[]): Promise<ImageResult[]> {
    const n = jobs.length;
    const size = this.imageSize;
    const { channels, height, width } = this.geometry;
    const dims = [n, channels, height, width];
    const input = new Float32Array(n * size);
    jobs.forEach((j, i) => input.set(j.pixels, i * size));
    const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', input, dims) };
    if (this.hasNoiseInput) {
      const noise = new Float32Array(n * size);
      jobs.forEach((j, i) => fillNoise(noise, i * size, size, this.noise.kind, j.sigma));
      feeds.noise = new ort.Tensor('float32', noise, dims);
    }
    const wantRec = jobs.some((j) => j.reconstruction);
    // the input and noise buffers move to the worker (transferred, not copied)
    const out = await this.session.run(feeds, wantRec ? ['probs', 'score', 'reconstruction'] : ['probs', 'score']);
    const k = this.labels.length;
    const probs = out.probs.data as Float32Array;
    const score = out.score.data as Float32Array;
    const rec = wantRec ? (out.reconstruction.data as Float32Array) : undefined;
    return jobs.map((j, i) => ({
      probs: probs.slice(i * k, (i + 1) * k),
      score: score[i],
      reconstruction: j.reconstruction && rec ? rec.slice(i * size, (i + 1) * size) : undefined,
    }));
  }

  /** Loads another graph into this set's inference workers, under `name`, with the serving session's settings. */
  async loadGraph(name: string, graph: Graph | Uint8Array): Promise<WorkerSession> {
    if (name === SERVING_GRAPH) throw new Error(`'${SERVING_GRAPH}' is the serving graph's own name`);
    const s = this.session;
    return s.pool.load(name, graph, { ...s.pool.optionsOf(SERVING_GRAPH), label: `${this.name}@${this.version}/${name}` });
  }

  /** One run of a graph loaded with loadGraph() (or the serving graph), on a worker thread. Feed buffers are transferred. */
  runGraph(name: string, feeds: Record<string, Feed>, outputs?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    return this.session.pool.run(name, feeds, outputs);
  }

  async close(): Promise<void> {
    await this.batcher.idle();
    await this.session.pool.close();
  }
}

/**
 * The noise policy: manifest values, overridden by the operator. A chain
 * without a noise stage cannot add noise, so its floor and ceiling are 0.
 */
export function resolveNoisePolicy(m: Manifest, override: Partial<NoisePolicy> | undefined, hasNoiseStage: boolean): NoisePolicy {
  const p: NoisePolicy = {
    kind: override?.kind ?? m.noise.kind,
    sigma: override?.sigma ?? m.noise.sigma,
    maxSigma: override?.maxSigma ?? m.noise.maxSigma,
  };
  if (!hasNoiseStage) {
    if (override?.sigma) throw new UserError(`model set '${m.name}' has no noise stage in its defence chain; noise ${override.sigma} cannot be applied`);
    return { ...p, sigma: 0, maxSigma: 0 };
  }
  if (p.maxSigma < p.sigma) p.maxSigma = p.sigma;
  return p;
}
