import { NoiseSpec, addNoise } from './noise';
import { GradientOracle, GradientRequest, GradientResult } from './oracle';
import { streamRng } from './seeding';

/**
 * Expectation over Transformation (Athalye et al. 2018) for the noise
 * defences: the gradient of E_n[L(clip(x + n))] estimated by averaging the
 * base oracle's gradients over `samples` noise draws. The noise layer's own
 * derivative is 1 where the clip did not bind and 0 where it did. Draws are
 * seeded per (image, step, sample), so a rerun sees the same noise.
 */
export class EotOracle implements GradientOracle {
  readonly name: string;
  readonly imageSize: number;
  readonly numClasses: number;

  constructor(
    private readonly base: GradientOracle,
    readonly noise: NoiseSpec,
    readonly samples: number,
    private readonly seed: number,
  ) {
    if (!(Number.isInteger(samples) && samples >= 1)) throw new Error(`eot: samples must be a positive integer, got ${samples}`);
    this.name = `eot(${base.name}, ${noise.kind}:${noise.sigma}, ${samples})`;
    this.imageSize = base.imageSize;
    this.numClasses = base.numClasses;
  }

  private draw(x: Float32Array, ids: readonly number[], step: number, sample: number, purpose: string, inside?: Uint8Array): Float32Array {
    const d = this.imageSize;
    const out = new Float32Array(x.length);
    ids.forEach((id, i) => addNoise(x, i * d, d, this.noise, streamRng(this.seed, purpose, id, step, sample), out, i * d, inside));
    return out;
  }

  async gradient(req: GradientRequest): Promise<GradientResult> {
    const n = req.labels.length;
    const k = this.numClasses;
    const grad = new Float32Array(req.x.length);
    const logits = new Float32Array(n * k);
    const loss = new Float32Array(n);
    const inside = new Uint8Array(req.x.length);
    // One base call per draw keeps the base batch the attack's batch (memory stays that of one pass).
    for (let s = 0; s < this.samples; s++) {
      const xs = this.draw(req.x, req.ids, req.step, s, 'eot', inside);
      const r = await this.base.gradient({ ...req, x: xs });
      for (let i = 0; i < grad.length; i++) if (inside[i]) grad[i] += r.grad[i];
      for (let i = 0; i < logits.length; i++) logits[i] += r.logits[i];
      for (let i = 0; i < n; i++) loss[i] += r.loss[i];
    }
    const w = 1 / this.samples;
    for (let i = 0; i < grad.length; i++) grad[i] *= w;
    for (let i = 0; i < logits.length; i++) logits[i] *= w;
    for (let i = 0; i < n; i++) loss[i] *= w;
    return { logits, loss, grad };
  }

  async logits(x: Float32Array, ids: readonly number[], step: number): Promise<Float32Array> {
    const n = ids.length;
    const out = new Float32Array(n * this.numClasses);
    for (let s = 0; s < this.samples; s++) {
      const z = await this.base.logits(this.draw(x, ids, step, s, 'eot-forward'), ids, step);
      for (let i = 0; i < out.length; i++) out[i] += z[i] / this.samples;
    }
    return out;
  }

  /** The base oracle is shared (one per gradient source), so its owner releases it. */
  async release(): Promise<void> {}
}
