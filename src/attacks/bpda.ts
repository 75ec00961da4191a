import { GradientOracle, GradientRequest, GradientResult } from './oracle';

/**
 * BPDA (Athalye, Carlini & Wagner 2018, "Obfuscated gradients give a false
 * sense of security"): the defended model is f(s(x)); the forward pass runs
 * s for real, the backward pass treats s as the identity. The gradient is
 * ∇_u L(f(u)) at u = s(x), passed straight through to x. It defeats a
 * purifier whose own Jacobian is shattered, vanishing or simply unhelpful,
 * while the logits, and so the decision whether an image is fooled, are the
 * true f(s(x)).
 */
export class BpdaOracle implements GradientOracle {
  readonly name: string;
  readonly imageSize: number;
  readonly numClasses: number;

  /** `purify` is s: images in, images out (same layout). */
  constructor(
    private readonly outer: GradientOracle,
    private readonly purify: (x: Float32Array) => Promise<Float32Array>,
    purifierName: string,
  ) {
    this.name = `bpda(${outer.name} ∘ ${purifierName})`;
    this.imageSize = outer.imageSize;
    this.numClasses = outer.numClasses;
  }

  private async purified(x: Float32Array): Promise<Float32Array> {
    const u = await this.purify(x);
    if (u.length !== x.length) throw new Error(`${this.name}: the purifier returned ${u.length} values for ${x.length}`);
    return u;
  }

  async gradient(req: GradientRequest): Promise<GradientResult> {
    return this.outer.gradient({ ...req, x: await this.purified(req.x) });
  }

  async logits(x: Float32Array, ids: readonly number[], step: number): Promise<Float32Array> {
    return this.outer.logits(await this.purified(x), ids, step);
  }

  /** The outer oracle is shared with other settings; its owner releases it. */
  async release(): Promise<void> {}
}
