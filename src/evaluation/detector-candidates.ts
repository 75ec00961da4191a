import * as ort from 'onnxruntime-node';
import { NoiseSpec, addNoise } from '../attacks/noise';
import { streamRng } from '../attacks/seeding';
import { Graph } from '../onnx/graph';
import { klScores, meanSquaredErrors, softmaxL1Distances } from '../pipeline/scores';
import { reconstructionOutput } from '../pipeline/compose';
import { ModelSession, SessionOptions, createSession } from '../runtime/session';
import { FEATURES_OUTPUT, withFeaturesOutput } from './feature-layer';

/**
 * The cheap detection scores compared by `s2s eval detectors`
 * (docs/detectors.md). Each is "larger = more likely adversarial" and made
 * of forward passes of f and s only, so any of them could replace the
 * service's KL without new models.
 */
export type CandidateName = 'kl' | 'kl-noise' | 'feature-mse' | 'pixel-mse' | 'softmax-l1';

export const CANDIDATE_NAMES: readonly CandidateName[] = ['kl', 'kl-noise', 'feature-mse', 'pixel-mse', 'softmax-l1'];

export interface NoiseDraws {
  sigma: number;
  draws: number;
}

export function candidateDescriptions(noise: NoiseDraws): Record<CandidateName, string> {
  return {
    kl: 'KL(softmax f(x) ‖ softmax f(s(x))) — the service’s detector',
    'kl-noise': `mean over ${noise.draws} draws n ~ N(0, ${noise.sigma}²) of KL(softmax f(x) ‖ softmax f(s(clip(x + n))))`,
    'feature-mse': 'mean over the D features of (φ(x) − φ(s(x)))², φ = f’s penultimate activations',
    'pixel-mse': 'mean over the C·H·W pixels of (x − s(x))²',
    'softmax-l1': '‖softmax f(x) − softmax f(s(x))‖₁',
  };
}

/** Forward passes per image (f, s), the cost a candidate adds to a request that already runs f ∘ s. */
export function candidatePasses(noise: NoiseDraws): Record<CandidateName, { f: number; s: number }> {
  return {
    kl: { f: 2, s: 1 },
    'kl-noise': { f: 1 + noise.draws, s: noise.draws },
    'feature-mse': { f: 2, s: 1 },
    'pixel-mse': { f: 0, s: 1 },
    'softmax-l1': { f: 2, s: 1 },
  };
}

export type CandidateScores = Record<CandidateName, Float64Array>;

/**
 * Scores a batch under every candidate. The noise draws are seeded by
 * (seed, image key, draw), so a clean image and its adversarial example
 * share their draws and a run does not depend on the batch size.
 */
export class CandidateScorer {
  private constructor(
    private readonly f: ModelSession,
    private readonly s: ModelSession,
    private readonly reconstruction: string,
    private readonly shape: readonly number[],
    private readonly noise: NoiseDraws,
    private readonly seed: number,
  ) {}

  /** `classifier` canonical (input `input`, output `logits`), `s2snet` as in the set. */
  static async open(classifier: Graph, s2snet: Graph, shape: readonly number[], o: { noise: NoiseDraws; seed: number; session: SessionOptions }): Promise<CandidateScorer> {
    const f = await createSession(withFeaturesOutput(classifier), { ...o.session, label: 'f+features' });
    const s = await createSession(s2snet, { ...o.session, label: 's2snet' });
    return new CandidateScorer(f, s, reconstructionOutput(s2snet, 's2snet'), shape, o.noise, o.seed);
  }

  private get per(): number {
    return this.shape.reduce((a, d) => a * d, 1);
  }

  private tensor(x: Float32Array): ort.Tensor {
    return new ort.Tensor('float32', x, [x.length / this.per, ...this.shape]);
  }

  private async classify(x: Float32Array): Promise<{ logits: Float32Array; features: Float32Array }> {
    const r = await this.f.run({ input: this.tensor(x) }, ['logits', FEATURES_OUTPUT]);
    return { logits: r.logits.data as Float32Array, features: r[FEATURES_OUTPUT].data as Float32Array };
  }

  private async reconstruct(x: Float32Array): Promise<Float32Array> {
    const r = await this.s.run({ input: this.tensor(x) }, [this.reconstruction]);
    return r[this.reconstruction].data as Float32Array;
  }

  /**
   * Every candidate for images `x` (n × C·H·W), with f(x)'s logits (the
   * evaluation needs them for accuracy). `keys` name the images' noise streams.
   * `timing` accumulates the seconds of the single-pass scores and of the noise draws.
   */
  async score(x: Float32Array, keys: readonly string[], timing?: { plain: number; noise: number }): Promise<{ scores: CandidateScores; logits: Float32Array }> {
    const per = this.per;
    const n = keys.length;
    if (x.length !== n * per) throw new Error(`CandidateScorer: ${x.length} values for ${n} images of ${per}`);
    let t = performance.now();
    const clean = await this.classify(x);
    const recon = await this.reconstruct(x);
    const defended = await this.classify(recon);
    const k = clean.logits.length / n;
    const d = clean.features.length / n;
    const scores = {
      kl: klScores(clean.logits, defended.logits, k),
      'feature-mse': meanSquaredErrors(clean.features, defended.features, d),
      'pixel-mse': meanSquaredErrors(x, recon, per),
      'softmax-l1': softmaxL1Distances(clean.logits, defended.logits, k),
    };
    if (timing) timing.plain += (performance.now() - t) / 1000;
    t = performance.now();
    const klNoise = new Float64Array(n);
    const spec: NoiseSpec = { kind: 'gaussian', sigma: this.noise.sigma };
    const noisy = new Float32Array(x.length);
    for (let draw = 0; draw < this.noise.draws; draw++) {
      for (let i = 0; i < n; i++) addNoise(x, i * per, per, spec, streamRng(this.seed, 'detector-noise', keys[i], draw), noisy, i * per);
      const kl = klScores(clean.logits, (await this.classify(await this.reconstruct(noisy))).logits, k);
      for (let i = 0; i < n; i++) klNoise[i] += kl[i] / this.noise.draws;
    }
    if (timing) timing.noise += (performance.now() - t) / 1000;
    return { scores: { ...scores, 'kl-noise': klNoise }, logits: clean.logits };
  }

  async release(): Promise<void> {
    await this.f.release();
    await this.s.release();
  }
}
