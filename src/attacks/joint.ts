import { GradientOracle, GradientRequest, GradientResult, Judgement } from './oracle';

/**
 * Which inputs a consistency detector refuses, from the judged (defended)
 * model's logits and the other (undefended) model's, both [n, K]: 1 = refused.
 */
export type RefusalRule = (judgedLogits: Float32Array, otherLogits: Float32Array) => Uint8Array;

/**
 * An attacker who knows the detector. The detector flags an image when f(x)
 * and f(s(x)) disagree (KL of their softmax outputs), so an attack that only
 * fools f ∘ s leaves f right and is caught. Pushing on the sum of both
 * losses, L(f(x')) + L(f(s(x'))), drives both models to the same wrong
 * answer, which is what slips past a consistency detector (the adaptive
 * attack Carlini & Wagner 2017, "Adversarial examples are not easily
 * detected", use against detectors of this kind).
 *
 * The gradient is the exact gradient of the summed loss. The logits are the
 * defended model's (`judged`): they decide whether an attack counts the
 * image as done. Given the detector's rule, the oracle also reports which
 * inputs the detector refuses (`refused`, `judge`), so an attack that
 * honours refusals (APGD) keeps going until it finds an example that is both
 * wrong and unflagged, instead of stopping at the first wrong one.
 */
export class JointOracle implements GradientOracle {
  readonly name: string;
  readonly imageSize: number;
  readonly numClasses: number;
  readonly judge?: (x: Float32Array, ids: readonly number[], step: number) => Promise<Judgement>;

  constructor(
    private readonly judged: GradientOracle,
    private readonly other: GradientOracle,
    private readonly refuses?: RefusalRule,
  ) {
    if (judged.imageSize !== other.imageSize || judged.numClasses !== other.numClasses) {
      throw new Error(`joint oracle: ${judged.name} and ${other.name} differ in image size or class count`);
    }
    this.name = `${judged.name}+${other.name}`;
    this.imageSize = judged.imageSize;
    this.numClasses = judged.numClasses;
    if (refuses) {
      this.judge = async (x, ids, step) => {
        const logits = await judged.logits(x, ids, step);
        return { logits, refused: refuses(logits, await other.logits(x, ids, step)) };
      };
    }
  }

  async gradient(req: GradientRequest): Promise<GradientResult> {
    const a = await this.judged.gradient(req);
    const b = await this.other.gradient(req);
    const grad = new Float32Array(a.grad.length);
    for (let i = 0; i < grad.length; i++) grad[i] = a.grad[i] + b.grad[i];
    const loss = new Float32Array(a.loss.length);
    for (let i = 0; i < loss.length; i++) loss[i] = a.loss[i] + b.loss[i];
    const out: GradientResult = { logits: a.logits, loss, grad };
    if (this.refuses) out.refused = this.refuses(a.logits, b.logits);
    return out;
  }

  logits(x: Float32Array, ids: readonly number[], step: number): Promise<Float32Array> {
    return this.judged.logits(x, ids, step);
  }

  /** The two oracles are shared with the other settings; their owner releases them. */
  async release(): Promise<void> {}
}
