import { GradientOracle, GradientRequest, GradientResult } from './oracle';

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
 * image as done.
 */
export class JointOracle implements GradientOracle {
  readonly name: string;
  readonly imageSize: number;
  readonly numClasses: number;

  constructor(
    private readonly judged: GradientOracle,
    private readonly other: GradientOracle,
  ) {
    if (judged.imageSize !== other.imageSize || judged.numClasses !== other.numClasses) {
      throw new Error(`joint oracle: ${judged.name} and ${other.name} differ in image size or class count`);
    }
    this.name = `${judged.name}+${other.name}`;
    this.imageSize = judged.imageSize;
    this.numClasses = judged.numClasses;
  }

  async gradient(req: GradientRequest): Promise<GradientResult> {
    const a = await this.judged.gradient(req);
    const b = await this.other.gradient(req);
    const grad = new Float32Array(a.grad.length);
    for (let i = 0; i < grad.length; i++) grad[i] = a.grad[i] + b.grad[i];
    const loss = new Float32Array(a.loss.length);
    for (let i = 0; i < loss.length; i++) loss[i] = a.loss[i] + b.loss[i];
    return { logits: a.logits, loss, grad };
  }

  logits(x: Float32Array, ids: readonly number[], step: number): Promise<Float32Array> {
    return this.judged.logits(x, ids, step);
  }

  /** The two oracles are shared with the other settings; their owner releases them. */
  async release(): Promise<void> {}
}
