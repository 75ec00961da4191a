import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType } from '../onnx/dtype';
import { Graph } from '../onnx/graph';
import { saveModel } from '../onnx/io';
import { TensorData } from '../onnx/tensor';
import { ModelSession, createSession } from '../runtime/session';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { Rng } from '../util/random';
import { FILES, TrainingArtifacts, loadArtifacts } from './artifacts';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { Batch, Dataset, readBatch } from './dataset';
import { inferenceGraph } from './export';
import { fuseTrainingStep } from './fuse';
import { LEARNING_RATE, STEP, gradName, stateNames, updatedName } from './optimizer';
import { TrainingProgress } from './progress';
import { TrainingSession } from './session';
import { LrSchedule, learningRate } from './schedule';

/**
 * Runs training artifacts with onnxruntime-node.
 *
 * Per step ('fused', the default) the trainer makes ONE session.run of a graph
 * that does forward, backward and the optimizer update (fuse.ts). Parameters,
 * optimizer state and running statistics live in two sets of Float32Arrays,
 * A and B: step t feeds A (ORT wraps the arrays, no copy) and ORT writes the
 * updated tensors straight into B (pre-allocated outputs), then A and B swap.
 * Nothing about the parameters passes through JavaScript arithmetic.
 * 'separate' runs training_model then optimizer_model, as ORT's own trainer
 * does (gradients go into pre-allocated buffers in between); it exists to
 * measure the difference and to exercise the optimizer artifact.
 *
 * Resume is exact: the checkpoint holds parameters, optimizer state, running
 * statistics, the step, the epoch/batch cursor and the shuffling RNG as it was
 * at the start of the epoch (the epoch's order is redrawn from it and the
 * consumed batches skipped); the learning rate is a function of the step.
 */
export interface TrainerOptions {
  /** artifacts folder (from `s2s artifacts`) or artifacts built in memory */
  artifacts: string | TrainingArtifacts;
  train: Dataset;
  /** evaluated every `evalEvery` steps and at the end */
  eval?: Dataset;
  batchSize: number;
  evalBatchSize?: number;
  /** stop after this many updates; default epochs × batches per epoch */
  steps?: number;
  epochs?: number;
  schedule: LrSchedule;
  /** seeds the shuffling RNG of a fresh run (a resumed run continues the checkpoint's RNG) */
  seed: number;
  shuffle?: boolean;
  /** drop the last, incomplete batch of an epoch (default true: every step sees batchSize images) */
  dropLast?: boolean;
  /** steps between evaluations; 0 = only at the end */
  evalEvery?: number;
  /** steps between checkpoint saves; 0 = only at the end. A checkpoint is always written when training finishes. */
  checkpointEvery?: number;
  /** where checkpoints go; default `<artifacts dir>/checkpoint.last`; required for artifacts given in memory if saving is wanted */
  checkpointPath?: string;
  /** continue from checkpointPath when it exists */
  resume?: boolean;
  mode?: 'fused' | 'separate';
  provider?: ProviderChoice;
  intraOpThreads?: number;
  /** progress bar on stderr; default: when stderr is a terminal */
  progress?: boolean;
  label?: string;
  onStep?: (s: StepRecord) => void;
  onEval?: (e: EvalRecord) => void;
  /**
   * Weight averaging: keep an exponential moving average of the parameters
   * and running statistics, updated after every step with decay
   * min(decay, (1 + t)/(10 + t)) at step t (so the first steps do not pin the
   * average to the initial weights). Evaluations, the exported graph and
   * `exportValues()` use the average; the steps themselves (and `values()`,
   * e.g. for adversarial examples of the model being trained) use the live
   * weights. Absent: no averaging.
   */
  average?: { decay: number };
}

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  imagesPerSecond: number;
}

export interface EvalResult {
  /** mean loss over all images */
  loss: number;
  images: number;
  /** top-1, when the data has labels and the model has a classifier output (the cross-entropy one, or `logits`) */
  accuracy?: number;
  /** mean PSNR in dB of the reconstruction (mse loss on images in [0, 1]) */
  psnr?: number;
}

export type EvalRecord = EvalResult & { step: number };

export interface TrainResult {
  steps: number;
  epochs: number;
  /** loss of every step made in this run, in order */
  losses: number[];
  evals: EvalRecord[];
  seconds: number;
  imagesPerSecond: number;
  checkpointPath?: string;
  /** true when run() returned at `stopAtStep` before the planned end */
  stopped: boolean;
}

interface Slot {
  name: string;
  dims: number[];
  cur: ort.Tensor;
  next: ort.Tensor;
}

/** What the epoch/batch cursor depends on, recorded in checkpoints and checked on resume. */
function cursorMeaning(o: TrainerOptions): Record<string, string> {
  return {
    'cursor.batch size': String(o.batchSize),
    'cursor.training-set size': String(o.train.size),
    'cursor.shuffle': String(o.shuffle ?? true),
    'cursor.drop last': String(o.dropLast ?? true),
  };
}

const f32 = (dims: number[], data?: Float32Array) => new ort.Tensor('float32', data ?? new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);

export class Trainer {
  readonly artifacts: TrainingArtifacts;
  private readonly slots = new Map<string, Slot>();
  private readonly grads = new Map<string, ort.Tensor>();
  private readonly lossOut = f32([]);
  private readonly lrIn = new Float32Array(1);
  private readonly stepIn = new BigInt64Array(1);
  private step = 0;
  private epoch = 0;
  private batchInEpoch = 0;
  private rng: Rng;
  private epochStartRng: ReturnType<Rng['state']>;
  private checked = false;
  /** the weight average (TrainerOptions.average), by parameter and buffer name */
  private readonly averaged?: Map<string, Float32Array>;
  readonly checkpointPath?: string;

  private constructor(
    private readonly opts: TrainerOptions,
    artifacts: TrainingArtifacts,
    private readonly stepSession: TrainingSession,
    private readonly optimizerSession: TrainingSession | undefined,
    private readonly evalSession: ModelSession,
    start: Checkpoint,
    checkpointPath: string | undefined,
  ) {
    this.artifacts = artifacts;
    this.checkpointPath = checkpointPath;
    const info = artifacts.info;
    const add = (name: string, dims: number[], init: TensorData | undefined) => {
      if (!init) throw new UserError(`checkpoint has no tensor '${name}'`);
      if (init.dims.join() !== dims.join()) throw new UserError(`checkpoint tensor '${name}' is [${init.dims}], the artifacts expect [${dims}]`);
      if (init.dataType !== DataType.FLOAT) throw new UserError(`checkpoint tensor '${name}' is not float32`);
      // Own copies: the two buffers are overwritten in turn.
      this.slots.set(name, { name, dims, cur: f32(dims, (init.data as Float32Array).slice()), next: f32(dims) });
    };
    for (const p of info.params) {
      add(p.name, p.dims, start.params.get(p.name));
      for (const s of stateNames(info.optimizer, p.name)) add(s, p.dims, start.optimizerState.get(s));
      if (optimizerSession) this.grads.set(p.name, f32(p.dims));
    }
    for (const b of info.buffers) add(b.name, b.dims, start.buffers.get(b.name));
    if (opts.average) {
      const d = opts.average.decay;
      if (!(d >= 0 && d < 1)) throw new UserError(`weight-average decay must be in [0, 1), got ${d}`);
      this.averaged = new Map();
      for (const name of this.averagedNames()) {
        const slot = this.slots.get(name)!;
        if (start.step === 0) {
          this.averaged.set(name, (slot.cur.data as Float32Array).slice());
          continue;
        }
        // a resumed run continues its own average, never one restarted from the resumed weights
        const kept = start.average?.get(name);
        if (!kept) throw new UserError(`checkpoint at step ${start.step} has no weight average for '${name}': it was written by a run that did not average weights`);
        if (kept.dims.join() !== slot.dims.join() || kept.dataType !== DataType.FLOAT) throw new UserError(`checkpoint's weight average of '${name}' is not float32 [${slot.dims}]`);
        this.averaged.set(name, (kept.data as Float32Array).slice());
      }
    }
    this.step = start.step;
    this.epoch = start.epoch;
    this.batchInEpoch = start.batchInEpoch;
    this.rng = start.rng ? new Rng(start.rng) : new Rng(opts.seed);
    this.epochStartRng = this.rng.state();
  }

  static async create(opts: TrainerOptions): Promise<Trainer> {
    const artifacts = typeof opts.artifacts === 'string' ? loadArtifacts(opts.artifacts) : opts.artifacts;
    const checkpointPath = opts.checkpointPath ?? (typeof opts.artifacts === 'string' ? join(opts.artifacts, `${FILES.checkpoint}.last`) : undefined);
    let start = artifacts.checkpoint;
    if (opts.resume && checkpointPath && existsSync(checkpointPath)) {
      start = loadCheckpoint(checkpointPath);
      if (JSON.stringify(start.optimizer) !== JSON.stringify(artifacts.info.optimizer)) {
        throw new UserError(`checkpoint ${checkpointPath} was written with optimizer ${JSON.stringify(start.optimizer)}, the artifacts use ${JSON.stringify(artifacts.info.optimizer)}`);
      }
      // The epoch/batch cursor only means the same batches under the same data order.
      const now = cursorMeaning(opts);
      for (const [k, v] of Object.entries(now)) {
        const was = start.metadata[k];
        if (was !== undefined && was !== v) {
          throw new UserError(`checkpoint ${checkpointPath} was written with ${k.replace('cursor.', '')} ${was}, this run has ${v}; resuming would not continue the same run`);
        }
      }
    }
    if (!(opts.batchSize >= 1)) throw new UserError(`batch size must be at least 1, got ${opts.batchSize}`);
    const info = artifacts.info;
    const want = opts.train.shape.join();
    const imageShape = artifacts.training.inputs.find((v) => v.name === info.imageInput)?.shape?.slice(1);
    if (imageShape && imageShape.every((d) => typeof d === 'number') && imageShape.join() !== want) {
      throw new UserError(`model input '${info.imageInput}' takes images of [${imageShape}], the training data has [${opts.train.shape}]`);
    }
    const sessionOpts = { provider: opts.provider ?? 'auto', intraOpThreads: opts.intraOpThreads ?? 0 };
    const mode = opts.mode ?? 'fused';
    const stepGraph: Graph = mode === 'fused' ? fuseTrainingStep(artifacts.training, artifacts.optimizer, info) : artifacts.training;
    const stepSession = await TrainingSession.create(stepGraph, { ...sessionOpts, label: stepGraph.name });
    const optimizerSession = mode === 'separate' ? await TrainingSession.create(artifacts.optimizer, { ...sessionOpts, label: artifacts.optimizer.name }) : undefined;
    const evalSession = await createSession(artifacts.eval, { ...sessionOpts, label: artifacts.eval.name });
    return new Trainer(opts, artifacts, stepSession, optimizerSession, evalSession, start, checkpointPath);
  }

  get provider(): string {
    return this.stepSession.provider;
  }

  /** Updates made so far (restored from the checkpoint on resume). */
  get stepsDone(): number {
    return this.step;
  }

  batchesPerEpoch(): number {
    const n = this.opts.train.size;
    const b = this.opts.batchSize;
    return (this.opts.dropLast ?? true) ? Math.floor(n / b) : Math.ceil(n / b);
  }

  totalSteps(): number {
    if (this.opts.steps !== undefined) return this.opts.steps;
    if (this.opts.epochs !== undefined) return this.opts.epochs * this.batchesPerEpoch();
    throw new UserError('training needs a length: steps or epochs');
  }

  private dataFeeds(b: Batch, n: number, ds: Dataset): Record<string, ort.Tensor> {
    const info = this.artifacts.info;
    const feeds: Record<string, ort.Tensor> = { [info.imageInput]: new ort.Tensor('float32', b.images, [n, ...ds.shape]) };
    if (info.labelsInput) {
      if (!b.labels) throw new UserError(`the ${info.loss.kind} loss needs labels, and the dataset has none`);
      feeds[info.labelsInput] = new ort.Tensor('int64', b.labels, [n]);
    }
    return feeds;
  }

  /** One update on one batch; returns the batch's mean loss. */
  async trainStep(b: Batch): Promise<number> {
    const info = this.artifacts.info;
    const n = b.images.length / this.opts.train.shape.reduce((a, c) => a * c, 1);
    this.lrIn[0] = learningRate(this.opts.schedule, this.step);
    this.stepIn[0] = BigInt(this.step + 1);
    const lr = new ort.Tensor('float32', this.lrIn, []);
    const stepT = new ort.Tensor('int64', this.stepIn, []);
    const feeds = this.dataFeeds(b, n, this.opts.train);
    const fetches: Record<string, ort.Tensor> = { [info.lossOutput]: this.lossOut };
    if (!this.optimizerSession) {
      feeds[LEARNING_RATE] = lr;
      feeds[STEP] = stepT;
      for (const s of this.slots.values()) feeds[s.name] = s.cur;
      for (const p of info.params) {
        fetches[updatedName(p.name)] = this.slots.get(p.name)!.next;
        for (const s of stateNames(info.optimizer, p.name)) fetches[updatedName(s)] = this.slots.get(s)!.next;
      }
      for (const bf of info.buffers) fetches[bf.updated] = this.slots.get(bf.name)!.next;
      await this.runChecked(this.stepSession, feeds, fetches);
    } else {
      for (const p of info.params) {
        feeds[p.name] = this.slots.get(p.name)!.cur;
        fetches[info.gradients[p.name]] = this.grads.get(p.name)!;
      }
      for (const bf of info.buffers) {
        feeds[bf.name] = this.slots.get(bf.name)!.cur;
        fetches[bf.updated] = this.slots.get(bf.name)!.next;
      }
      await this.runChecked(this.stepSession, feeds, fetches);
      const of: Record<string, ort.Tensor> = { [LEARNING_RATE]: lr, [STEP]: stepT };
      const ofetch: Record<string, ort.Tensor> = {};
      for (const p of info.params) {
        for (const name of [p.name, ...stateNames(info.optimizer, p.name)]) {
          of[name] = this.slots.get(name)!.cur;
          ofetch[updatedName(name)] = this.slots.get(name)!.next;
        }
        of[gradName(p.name)] = this.grads.get(p.name)!;
      }
      await this.optimizerSession.session.run(of, ofetch);
    }
    for (const s of this.slots.values()) [s.cur, s.next] = [s.next, s.cur];
    this.step++;
    this.updateAverage();
    return (this.lossOut.data as Float32Array)[0];
  }

  private averagedNames(): string[] {
    const info = this.artifacts.info;
    return [...info.params.map((p) => p.name), ...info.buffers.map((b) => b.name)];
  }

  /** avg ← d·avg + (1 − d)·w after step t, with d = min(decay, (1 + t)/(10 + t)) */
  private updateAverage(): void {
    if (!this.averaged) return;
    const d = Math.min(this.opts.average!.decay, (1 + this.step) / (10 + this.step));
    const e = 1 - d;
    for (const [name, avg] of this.averaged) {
      const w = this.slots.get(name)!.cur.data as Float32Array;
      for (let i = 0; i < avg.length; i++) avg[i] += e * (w[i] - avg[i]);
    }
  }

  /** The tensor an evaluation or export reads: the average when weights are averaged, else the live weights. */
  private exported(name: string): ort.Tensor {
    const avg = this.averaged?.get(name);
    const s = this.slots.get(name)!;
    return avg ? new ort.Tensor('float32', avg, s.dims) : s.cur;
  }

  private async runChecked(s: TrainingSession, feeds: Record<string, ort.Tensor>, fetches: Record<string, ort.Tensor>): Promise<void> {
    // Shapes are checked once with readable errors; after that the feeds only change in batch size.
    if (!this.checked) {
      s.checkFeeds(feeds);
      this.checked = true;
    }
    await s.session.run(feeds, fetches);
  }

  /** Mean loss (and accuracy / PSNR where they apply) over a dataset, with the parameters training exports (the average, when weights are averaged). */
  async evaluate(ds: Dataset | undefined = this.opts.eval): Promise<EvalResult> {
    if (!ds) throw new UserError('no evaluation data');
    const info = this.artifacts.info;
    const bs = this.opts.evalBatchSize ?? this.opts.batchSize;
    // Accuracy is read from the classifier output: the one cross-entropy reads, else one named `logits`.
    const logitsName = info.loss.kind === 'cross-entropy' ? info.loss.output : info.modelOutputs.some((o) => o.name === 'logits') ? 'logits' : undefined;
    const hasLogits = logitsName !== undefined;
    let lossSum = 0;
    let correct = 0;
    let labelled = 0;
    let psnrSum = 0;
    for (let start = 0; start < ds.size; start += bs) {
      const idx = Array.from({ length: Math.min(bs, ds.size - start) }, (_, i) => start + i);
      const b = await readBatch(ds, idx);
      const feeds = this.dataFeeds(b, idx.length, ds);
      for (const p of info.params) feeds[p.name] = this.exported(p.name);
      for (const bf of info.buffers) feeds[bf.name] = this.exported(bf.name);
      const wanted = [info.perSampleLoss, ...(hasLogits && b.labels ? [logitsName!] : [])];
      const out = await this.evalSession.run(feeds, wanted);
      const per = out[info.perSampleLoss].data as Float32Array;
      for (const v of per) {
        lossSum += v;
        if (info.loss.kind === 'mse') psnrSum += 10 * Math.log10(1 / Math.max(v, 1e-10));
      }
      if (hasLogits && b.labels) {
        const logits = out[logitsName!].data as Float32Array;
        const k = logits.length / idx.length;
        for (let i = 0; i < idx.length; i++) {
          let best = 0;
          for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
          if (BigInt(best) === b.labels[i]) correct++;
        }
        labelled += idx.length;
      }
    }
    const r: EvalResult = { loss: lossSum / ds.size, images: ds.size };
    if (labelled) r.accuracy = correct / labelled;
    if (info.loss.kind === 'mse') r.psnr = psnrSum / ds.size;
    return r;
  }

  /**
   * Trains until the planned number of steps. `stopAtStep` ends the run early
   * after that step without writing anything more than the periodic
   * checkpoints already written — what a kill at that moment leaves behind.
   */
  async run(o: { stopAtStep?: number } = {}): Promise<TrainResult> {
    const total = this.totalSteps();
    const perEpoch = this.batchesPerEpoch();
    if (perEpoch === 0) throw new UserError(`batch size ${this.opts.batchSize} is larger than the training set (${this.opts.train.size} images)`);
    const progress = new TrainingProgress(this.opts.progress ?? Boolean(process.stderr.isTTY), this.opts.label ?? 'train');
    const losses: number[] = [];
    const evals: EvalRecord[] = [];
    const t0 = performance.now();
    let trainMs = 0;
    let images = 0;
    let stopped = false;
    const every = (k: number | undefined) => k !== undefined && k > 0 && this.step % k === 0;
    progress.start(total, this.step);
    try {
      outer: while (this.step < total) {
        this.epochStartRng = this.rng.state();
        const order = (this.opts.shuffle ?? true) ? this.rng.permutation(this.opts.train.size) : Array.from({ length: this.opts.train.size }, (_, i) => i);
        const bs = this.opts.batchSize;
        const indicesOf = (b: number) => order.slice(b * bs, Math.min((b + 1) * bs, order.length));
        // A prefetched batch whose read fails is reported when awaited, not as an unhandled rejection meanwhile.
        const prefetch = (b: number) => {
          const p = readBatch(this.opts.train, indicesOf(b));
          p.catch(() => undefined);
          return p;
        };
        let pending: Promise<Batch> | undefined = this.batchInEpoch < perEpoch ? prefetch(this.batchInEpoch) : undefined;
        while (this.batchInEpoch < perEpoch && this.step < total) {
          const batch = await pending!;
          const b = this.batchInEpoch;
          // Read the next batch while this one trains (file decoding runs on libuv's threads).
          pending = b + 1 < perEpoch && this.step + 1 < total ? prefetch(b + 1) : undefined;
          const ts = performance.now();
          const loss = await this.trainStep(batch);
          trainMs += performance.now() - ts;
          const n = indicesOf(b).length;
          images += n;
          this.batchInEpoch = b + 1;
          losses.push(loss);
          const lr = learningRate(this.opts.schedule, this.step - 1);
          const ips = progress.step(this.step, this.epoch + 1, loss, lr, n);
          this.opts.onStep?.({ step: this.step, epoch: this.epoch, loss, lr, imagesPerSecond: ips });
          if (!Number.isFinite(loss)) throw new UserError(`loss became ${loss} at step ${this.step}; lower the learning rate`);
          if (every(this.opts.checkpointEvery) && this.step < total) {
            this.save();
            progress.pause();
          }
          if (every(this.opts.evalEvery) && this.opts.eval && this.step < total) {
            const e = { ...(await this.evaluate()), step: this.step };
            evals.push(e);
            this.opts.onEval?.(e);
            progress.evaluated(e);
            progress.pause();
          }
          if (o.stopAtStep !== undefined && this.step >= o.stopAtStep && this.step < total) {
            stopped = true;
            break outer;
          }
        }
        if (this.batchInEpoch >= perEpoch) {
          this.epoch++;
          this.batchInEpoch = 0;
        }
      }
      if (!stopped) {
        if (this.checkpointPath) this.save();
        if (this.opts.eval) {
          const e = { ...(await this.evaluate()), step: this.step };
          evals.push(e);
          this.opts.onEval?.(e);
          progress.evaluated(e);
        }
      }
    } finally {
      progress.stop();
    }
    return {
      steps: this.step,
      epochs: this.epoch + this.batchInEpoch / perEpoch,
      losses,
      evals,
      seconds: (performance.now() - t0) / 1000,
      imagesPerSecond: trainMs > 0 ? images / (trainMs / 1000) : 0,
      checkpointPath: this.checkpointPath,
      stopped,
    };
  }

  /** Current (live) parameters and running statistics (copies): what the next step starts from. */
  values(): Map<string, TensorData> {
    const out = new Map<string, TensorData>();
    for (const name of this.averagedNames()) {
      const s = this.slots.get(name)!;
      out.set(name, { dataType: DataType.FLOAT, dims: [...s.dims], data: (s.cur.data as Float32Array).slice() });
    }
    return out;
  }

  /** What training produces (copies): the weight average when weights are averaged, else the live values. */
  exportValues(): Map<string, TensorData> {
    if (!this.averaged) return this.values();
    const out = new Map<string, TensorData>();
    for (const [name, avg] of this.averaged) out.set(name, { dataType: DataType.FLOAT, dims: [...this.slots.get(name)!.dims], data: avg.slice() });
    return out;
  }

  checkpoint(): Checkpoint {
    const info = this.artifacts.info;
    // No copies: the checkpoint is written synchronously before the buffers change again.
    const view = (name: string): TensorData => {
      const s = this.slots.get(name)!;
      return { dataType: DataType.FLOAT, dims: s.dims, data: s.cur.data as Float32Array };
    };
    return {
      step: this.step,
      epoch: this.epoch,
      batchInEpoch: this.batchInEpoch,
      rng: this.epochStartRng,
      optimizer: info.optimizer,
      params: new Map(info.params.map((p) => [p.name, view(p.name)])),
      optimizerState: new Map(info.params.flatMap((p) => stateNames(info.optimizer, p.name).map((s) => [s, view(s)] as const))),
      buffers: new Map(info.buffers.map((b) => [b.name, view(b.name)])),
      average: this.averaged && new Map([...this.averaged].map(([name, avg]) => [name, { dataType: DataType.FLOAT, dims: this.slots.get(name)!.dims, data: avg }] as const)),
      metadata: { ...this.artifacts.checkpoint.metadata, ...cursorMeaning(this.opts) },
    };
  }

  save(path = this.checkpointPath): string {
    if (!path) throw new UserError('no checkpoint path (give checkpointPath when the artifacts are not a folder)');
    saveCheckpoint(path, this.checkpoint());
    return path;
  }

  /** The original model with the trained values (the average, when weights are averaged), ready for inference. */
  inferenceGraph(): Graph {
    return inferenceGraph(this.artifacts.eval, this.artifacts.info, this.exportValues());
  }

  exportInference(path: string): Graph {
    const g = this.inferenceGraph();
    saveModel(g, path);
    return g;
  }

  async release(): Promise<void> {
    await this.stepSession.release();
    await this.optimizerSession?.release();
    await this.evalSession.release();
  }
}
