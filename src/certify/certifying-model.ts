import { Batcher, BatcherObserver, OverloadError } from '../serving/batcher';
import type { ModelSet } from '../models/loader';
import type { Manifest } from '../models/manifest';
import type { Graph } from '../onnx/graph';
import type { ProviderChoice } from '../runtime/providers';
import type { RuntimeLogger } from '../runtime/session';
import { BaseKind, baseGraphsOf, buildBaseClassifier } from './base-classifier';
import { BaseRunner, BaseSession, baseSessionOn, openBaseSession } from './base-session';
import type { NoiseFactory } from './noise-source';
import { CertifyPolicy, OperatorCertifyPolicy, policyForSet } from './policy';
import { drawSampler } from './sampler';
import { Certificate, CertifySettings, certify } from './smoothing';

/**
 * A model set's smoothed classifier, ready to serve: the base classifier h
 * of its defence (f ∘ s when the chain has the S2SNet, f ∘ AE for the plain
 * autoencoder, f otherwise) in its own session, behind a Batcher like the
 * classify path's. The batcher's unit is a chunk of noisy copies of one
 * image; one chunk runs per session call, so concurrent requests take turns
 * chunk by chunk instead of one request holding the session for all its draws.
 */

export interface DrawChunk {
  noisy: Float32Array;
  count: number;
}

export interface CertifyingOptions {
  /** the operator's bounds; σ left open defaults to the set's smoothing σ */
  policy: OperatorCertifyPolicy;
  provider: ProviderChoice;
  intraOpThreads: number;
  /**
   * images being certified at once at most; a request that would exceed it
   * is refused whole with a 503 before any draw (never half-way). Each holds
   * up to two chunks of noisy copies in memory (batch × C·H·W floats each).
   */
  maxImages: number;
  logger?: RuntimeLogger;
  observer?: BatcherObserver;
  /**
   * Where h's session lives: the service passes its served set, whose inference
   * worker threads load h beside the serving graph (then provider and threads
   * are theirs); without it h gets an in-process session.
   */
  host?: { loadGraph(name: string, graph: Graph): Promise<BaseRunner> };
}

/** The name h is loaded under in a served set's inference workers. */
export const CERTIFY_GRAPH = 'certify-base';

export interface ServedCertificate extends Certificate {
  queueMs: number;
  inferenceMs: number;
  runs: number;
}

/**
 * The base classifier the service smooths: the set's smoothing denoiser in
 * front of f when it has one (trained for exactly this), else the defence
 * chain's reconstruction in front of f.
 */
export function servedBase(m: Manifest): BaseKind {
  if (m.smoothing) return 'f∘d';
  for (const s of m.defence.chain) {
    if (s.stage === 's2snet') return 'f∘s';
    if (s.stage === 'autoencoder') return 'f∘ae';
  }
  return 'f';
}

export class CertifyingModel {
  readonly batcher: Batcher<DrawChunk, ArrayLike<number | bigint>>;
  private inFlight = 0;

  private constructor(
    readonly manifest: Manifest,
    readonly base: BaseKind,
    private readonly h: BaseSession,
    readonly policy: CertifyPolicy,
    readonly maxImages: number,
    private readonly observer?: BatcherObserver,
    /** false when h lives in a host's workers: the host releases it with everything else */
    private readonly ownsSession = true,
  ) {
    // Admission (below) keeps at most one queued chunk per admitted image, so the queue never refuses one.
    this.batcher = new Batcher((chunks) => this.runChunks(chunks), { maxBatch: 1, maxDelayMs: 0, queueLimit: maxImages }, observer);
  }

  static async load(set: ModelSet, o: CertifyingOptions): Promise<CertifyingModel> {
    const m = set.manifest;
    const base = servedBase(m);
    const graph = buildBaseClassifier(m, baseGraphsOf(set, [base]), base);
    const shape: [number, number, number] = [m.input.channels, m.input.height, m.input.width];
    const h = o.host
      ? baseSessionOn(await o.host.loadGraph(CERTIFY_GRAPH, graph), shape)
      : await openBaseSession(graph, shape, {
          provider: o.provider,
          intraOpThreads: o.intraOpThreads,
          label: `${m.name}@${m.version} ${base} (certify)`,
          logger: o.logger,
          allowSpinning: false,
        });
    return new CertifyingModel(m, base, h, policyForSet(o.policy, m), Math.max(1, o.maxImages), o.observer, !o.host);
  }

  get name(): string {
    return this.manifest.name;
  }

  /** the σ the set's smoothing denoiser was trained for, when h has it */
  get trainedSigma(): number | undefined {
    return this.base === 'f∘d' ? this.manifest.smoothing?.sigma : undefined;
  }

  get provider(): string {
    return this.h.session.provider;
  }

  /** The session call for a batch of chunks (one, with maxBatch 1). */
  private async runChunks(chunks: DrawChunk[]): Promise<Array<ArrayLike<number | bigint>>> {
    const out: Array<ArrayLike<number | bigint>> = [];
    for (const c of chunks) out.push(await this.h.run(c.noisy, c.count));
    return out;
  }

  /** CERTIFY for a request's images, all admitted at once or refused with a 503. */
  async certifyAll(pixels: Float32Array[], s: CertifySettings, noiseFor: (i: number) => NoiseFactory, deadline: number): Promise<ServedCertificate[]> {
    if (this.inFlight + pixels.length > this.maxImages) {
      this.observer?.rejected?.('queue_full');
      throw new OverloadError(`certification is busy (${this.inFlight} of ${this.maxImages} images in progress); retry shortly`, 'queue_full', 1);
    }
    this.inFlight += pixels.length;
    try {
      return await Promise.all(pixels.map((p, i) => this.certify(p, s, noiseFor(i), deadline)));
    } finally {
      this.inFlight -= pixels.length;
    }
  }

  /**
   * CERTIFY for one image through the batcher; each chunk waits its turn in
   * the queue and fails with a 503 if still queued at `deadline` (performance.now() ms).
   */
  async certify(pixels: Float32Array, s: CertifySettings, noise: NoiseFactory, deadline: number): Promise<ServedCertificate> {
    let queueMs = 0;
    let inferenceMs = 0;
    let runs = 0;
    const sampler = drawSampler({
      pixels,
      sigma: s.sigma,
      classes: this.manifest.labels.length,
      batch: this.policy.batch,
      noise,
      run: async (noisy, count) => {
        const ticket = this.batcher.reserve(1);
        const [r] = await ticket.submit([{ noisy, count }], deadline);
        queueMs += r.queueMs;
        inferenceMs += r.inferenceMs;
        runs++;
        return r.output;
      },
    });
    const c = await certify(sampler, s);
    return { ...c, queueMs, inferenceMs, runs };
  }

  async close(): Promise<void> {
    await this.batcher.idle();
    if (this.ownsSession) await this.h.session.release();
  }
}
