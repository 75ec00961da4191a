import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Graph } from '../onnx/graph';
import { encodeModel } from '../onnx/io';
import { ProviderChoice } from '../runtime/providers';
import { ArtifactOptions, buildArtifacts } from '../training/artifacts';
import { loadCheckpoint } from '../training/checkpoint';
import { Dataset } from '../training/dataset';
import { OptimizerConfig } from '../training/optimizer';
import { LrSchedule } from '../training/schedule';
import { EvalRecord, TrainResult, Trainer } from '../training/trainer';
import { UserError } from '../util/errors';

/**
 * One training stage (classifier, autoencoder or S2SNet decoder) on the
 * trainer: builds the artifacts in memory, trains with a cosine schedule and
 * linear warm-up, checkpoints into `checkpointDir` so a killed run resumes
 * exactly, and returns the trained inference graph.
 *
 * A checkpoint is only resumed when it was written for the same stage: the
 * model, the loss, the data and every hyperparameter are hashed into the
 * checkpoint's metadata, and a mismatch is refused rather than silently
 * mixing two runs.
 */
export interface StageSettings {
  epochs: number;
  batchSize: number;
  lr: number;
  /** fraction of the steps spent warming up linearly (default 0.05) */
  warmup?: number;
  /** lr at the end of the cosine (default lr / 100) */
  minLr?: number;
  weightDecay?: number;
  optimizer?: 'adamw' | 'sgd';
  seed: number;
  /** stop after this many steps instead (smoke tests) */
  steps?: number;
  /** export an exponential moving average of the weights with this decay (TrainerOptions.average); absent or 0: the last weights */
  averageDecay?: number;
}

export interface StageRun {
  /** shown in the progress bar and logs */
  label: string;
  model: Graph;
  artifacts: Omit<ArtifactOptions, 'optimizer'>;
  train: Dataset;
  /** evaluated at the end (and every `evalEvery` steps) */
  eval?: Dataset;
  evalEvery?: number;
  settings: StageSettings;
  /** where checkpoint.last is kept; without it nothing is saved */
  checkpointDir?: string;
  checkpointEvery?: number;
  resume?: boolean;
  /** describes the data, part of the resume fingerprint */
  dataTag: string;
  provider?: ProviderChoice;
  intraOpThreads?: number;
  /** plain log lines (non-terminal progress, evaluations); default stderr */
  log?: (line: string) => void;
  /** called with the trainer before its first step (e.g. for data made against the model being trained) */
  onTrainer?: (trainer: Trainer) => void;
}

export interface StageResult {
  graph: Graph;
  train: TrainResult;
  /** the trained parameters and running statistics (their average, when the stage averages weights) */
  values: ReturnType<Trainer['values']>;
  finalEval?: EvalRecord;
  resumedFrom?: number;
  seconds: number;
  /** CPU time of this process during the stage (user + system), the cost on a machine shared with other work */
  cpuSeconds: number;
  provider: string;
}

export const CHECKPOINT_FILE = 'checkpoint.last';
const FINGERPRINT = 's2s.stage.fingerprint';

function optimizerOf(s: StageSettings): OptimizerConfig {
  return (s.optimizer ?? 'adamw') === 'adamw' ? { kind: 'adamw', weightDecay: s.weightDecay ?? 1e-4 } : { kind: 'sgd', momentum: 0.9, weightDecay: s.weightDecay ?? 5e-4, nesterov: true };
}

function fingerprint(r: StageRun): string {
  const h = createHash('sha256');
  h.update(encodeModel(r.model));
  h.update(JSON.stringify({ a: { ...r.artifacts, loss: { ...r.artifacts.loss, reference: typeof r.artifacts.loss.reference === 'object' ? 'classifier' : r.artifacts.loss.reference } }, s: r.settings, d: r.dataTag }));
  if (typeof r.artifacts.loss.reference === 'object') h.update(encodeModel(r.artifacts.loss.reference.classifier));
  return h.digest('hex');
}

export async function runStage(r: StageRun): Promise<StageResult> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const log = r.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const s = r.settings;
  const artifacts = buildArtifacts(r.model, { ...r.artifacts, optimizer: optimizerOf(s) });
  const fp = fingerprint(r);
  artifacts.checkpoint.metadata = { ...artifacts.checkpoint.metadata, [FINGERPRINT]: fp, stage: r.label };

  let checkpointPath: string | undefined;
  let resumedFrom: number | undefined;
  if (r.checkpointDir) {
    mkdirSync(r.checkpointDir, { recursive: true });
    checkpointPath = join(r.checkpointDir, CHECKPOINT_FILE);
    if (existsSync(checkpointPath)) {
      if (!r.resume) throw new UserError(`${checkpointPath} exists; pass --resume to continue that run, or choose another --checkpoint-dir`);
      const c = loadCheckpoint(checkpointPath);
      if (c.metadata[FINGERPRINT] !== fp) {
        throw new UserError(`${checkpointPath} belongs to a different run (other model, data or settings); refusing to resume from it`);
      }
      resumedFrom = c.step;
    }
  }

  const perEpoch = Math.floor(r.train.size / s.batchSize);
  if (perEpoch === 0) throw new UserError(`${r.label}: batch size ${s.batchSize} is larger than the training set (${r.train.size} images)`);
  const total = s.steps ?? s.epochs * perEpoch;
  const warmupSteps = Math.round((s.warmup ?? 0.05) * total);
  const schedule: LrSchedule = { kind: 'cosine', lr: s.lr, totalSteps: total, minLr: s.minLr ?? s.lr / 100, warmupSteps };
  const tty = Boolean(process.stderr.isTTY);
  let lastLine = performance.now();
  const trainer = await Trainer.create({
    artifacts,
    train: r.train,
    eval: r.eval,
    batchSize: s.batchSize,
    evalBatchSize: 250,
    steps: total,
    schedule,
    seed: s.seed,
    average: s.averageDecay ? { decay: s.averageDecay } : undefined,
    evalEvery: r.evalEvery ?? 0,
    checkpointEvery: checkpointPath ? r.checkpointEvery ?? Math.max(1, Math.round(perEpoch / 4)) : 0,
    checkpointPath,
    resume: r.resume,
    provider: r.provider ?? 'cpu',
    intraOpThreads: r.intraOpThreads ?? 0,
    progress: tty,
    label: r.label,
    onStep: tty
      ? undefined
      : (st) => {
          // Without a terminal the bar is off; a line every 20 s keeps a log file informative.
          const now = performance.now();
          if (now - lastLine < 20000 && st.step !== total) return;
          lastLine = now;
          log(`${r.label}: step ${st.step}/${total} epoch ${st.epoch} loss ${st.loss.toFixed(4)} lr ${st.lr.toExponential(2)} ${st.imagesPerSecond.toFixed(0)} img/s`);
        },
    onEval: (e) => log(`${r.label}: eval at step ${e.step}: loss ${e.loss.toFixed(4)}${e.accuracy !== undefined ? ` top-1 ${(100 * e.accuracy).toFixed(2)}%` : ''}${e.psnr !== undefined ? ` PSNR ${e.psnr.toFixed(2)} dB` : ''} (${e.images} images)`),
  });
  r.onTrainer?.(trainer);
  if (resumedFrom !== undefined) log(`${r.label}: resuming from step ${resumedFrom} of ${total} (${checkpointPath})`);
  try {
    const train = await trainer.run();
    return {
      graph: trainer.inferenceGraph(),
      train,
      values: trainer.exportValues(),
      finalEval: train.evals.at(-1),
      resumedFrom,
      seconds: (performance.now() - t0) / 1000,
      cpuSeconds: cpuSecondsSince(cpu0),
      provider: trainer.provider,
    };
  } finally {
    await trainer.release();
  }
}

export function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}
