import { GradientOracle, GradientRequest, GradientResult, Judgement } from './oracle';

/**
 * A differentiable detection score s(x) per image, larger = more likely
 * adversarial, with its input gradient.
 */
export interface DetectorScore {
  readonly name: string;
  /** per image */
  value(x: Float32Array): Promise<Float32Array>;
  /** per image, and d(score[i]) / d(x[i]) in x's layout */
  gradient(x: Float32Array): Promise<{ value: Float32Array; grad: Float32Array }>;
  release(): Promise<void>;
}

/** Which inputs the detector in front of the judged model refuses, given the judged model's logits: 1 = refused. */
export type Refusal = (x: Float32Array, judgedLogits: Float32Array) => Promise<Uint8Array>;

/**
 * An attacker who knows a detector whose score is differentiable: it ascends
 * L(f ∘ s(x′)) − c · score(x′) / threshold, the model's loss with the
 * detector's score as a penalty (Carlini & Wagner 2017, "Adversarial
 * examples are not easily detected", attack a detector this way), and an
 * example counts only where the score is at most the threshold: the oracle
 * reports the rest as refused, so an attack that honours refusals (APGD)
 * keeps searching for an example that is wrong *and* unflagged. Dividing by
 * the threshold makes `weight` unit-free: at weight 1, an example scored at
 * the threshold pays one nat of cross-entropy.
 *
 * `refuses` puts another detector in front instead: the score is then the
 * attacker's surrogate for it (the feature-space error against the KL
 * detector: features that agree make logits that agree), and only that
 * detector's flags count.
 */
export class PenalisedOracle implements GradientOracle {
  readonly name: string;
  readonly imageSize: number;
  readonly numClasses: number;

  constructor(
    private readonly judged: GradientOracle,
    private readonly score: DetectorScore,
    private readonly threshold: number,
    private readonly weight = 1,
    private readonly refuses?: Refusal,
  ) {
    if (!(threshold > 0)) throw new Error(`penalised oracle: the threshold must be positive, got ${threshold}`);
    if (!(weight >= 0)) throw new Error(`penalised oracle: the weight must be ≥ 0, got ${weight}`);
    this.name = `${judged.name}−${score.name}`;
    this.imageSize = judged.imageSize;
    this.numClasses = judged.numClasses;
  }

  private refusals(score: Float32Array): Uint8Array {
    // NaN counts as flagged, as the service flags it
    return Uint8Array.from(score, (v) => (v <= this.threshold ? 0 : 1));
  }

  async gradient(req: GradientRequest): Promise<GradientResult> {
    const a = await this.judged.gradient(req);
    const p = await this.score.gradient(req.x);
    const c = this.weight / this.threshold;
    const grad = new Float32Array(a.grad.length);
    for (let i = 0; i < grad.length; i++) grad[i] = a.grad[i] - c * p.grad[i];
    const loss = Float32Array.from(a.loss, (v, i) => v - c * p.value[i]);
    return { logits: a.logits, loss, grad, refused: this.refuses ? await this.refuses(req.x, a.logits) : this.refusals(p.value) };
  }

  logits(x: Float32Array, ids: readonly number[], step: number): Promise<Float32Array> {
    return this.judged.logits(x, ids, step);
  }

  async judge(x: Float32Array, ids: readonly number[], step: number): Promise<Judgement> {
    const logits = await this.judged.logits(x, ids, step);
    return { logits, refused: this.refuses ? await this.refuses(x, logits) : this.refusals(await this.score.value(x)) };
  }

  /** The judged oracle is shared with the other settings and the score with the scorer's owner; they release them. */
  async release(): Promise<void> {}
}
