import * as ort from 'onnxruntime-node';
import { loadModel } from '../onnx/io';
import type { Graph } from '../onnx/graph';
import { ModelSession, RuntimeLogger, createSession } from '../runtime/session';
import type { Provider, ProviderChoice } from '../runtime/providers';
import type { ModelSet } from '../models/loader';
import type { Manifest } from '../models/manifest';
import { UserError } from '../util/errors';
import { Batcher, BatcherObserver, BatcherOptions } from './batcher';
import { buildServingGraph } from './graph';
import { Geometry, geometryOf } from './image';
import { NoisePolicy, fillNoise } from './noise';

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
  intraOpThreads: number;
  batcher: BatcherOptions;
  /** operator overrides of the manifest's noise policy */
  noise?: Partial<NoisePolicy>;
  logger?: RuntimeLogger;
  observer?: BatcherObserver;
}

/**
 * A model set ready to serve: its composed serving graph in one session, the
 * batcher in front of it, and what the routes need to describe it.
 */
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
    readonly session: ModelSession,
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
    this.batcher = new Batcher((jobs) => this.runBatch(jobs), batcherOptions, observer);
  }

  static async load(set: ModelSet, opts: ServeOptions): Promise<ServedModel> {
    const m = set.manifest;
    const graphs: Record<string, Graph> = { classifier: loadModel(set.paths.classifier) };
    for (const s of m.defence.chain) {
      if ((s.stage === 's2snet' || s.stage === 'autoencoder') && !graphs[s.stage]) graphs[s.stage] = loadModel(set.paths[s.stage]);
    }
    const graph = buildServingGraph(m, graphs);
    const hasNoiseStage = m.defence.chain.some((s) => s.stage === 'noise');
    const noise = resolveNoisePolicy(m, opts.noise, hasNoiseStage);
    const session = await createSession(graph, {
      provider: opts.provider,
      intraOpThreads: opts.intraOpThreads,
      label: `${m.name}@${m.version}`,
      logger: opts.logger,
      // Spinning ORT threads would take the cores that decoding and the event loop need between batches.
      allowSpinning: false,
    });
    return new ServedModel(m, session, noise, opts.batcher, opts.observer);
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

  async close(): Promise<void> {
    await this.batcher.idle();
    await this.session.release();
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
