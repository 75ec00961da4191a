import { binomialTestHalf, lowerConfidenceBound, radiusFor } from './bounds';

/**
 * CERTIFY and PREDICT of Cohen, Rosenfeld & Kolter (2019), "Certified
 * Adversarial Robustness via Randomized Smoothing", for the smoothed
 * classifier g(x) = argmax_c P(h(x + δ) = c), δ ~ N(0, σ²I), where h is any
 * base classifier (here f, f ∘ s, f ∘ AE). They only count h's answers on
 * noisy copies of x; how the draws are made is the Sampler's business.
 */

/** Counts of h's answers on `draws` noisy copies of the image, one count per class. */
export interface Sampler {
  readonly classes: number;
  /** `phase` names an independent noise stream (selection and estimation must not share draws). */
  sample(draws: number, phase: 'selection' | 'estimation' | 'prediction'): Promise<Int32Array>;
}

export const ABSTAIN = 'abstain' as const;

export interface CertifySettings {
  sigma: number;
  /** selection draws (Cohen et al. use 100) */
  n0: number;
  /** estimation draws */
  n: number;
  /** failure probability of the certificate */
  alpha: number;
}

export interface Certificate {
  /** g's class, or abstain when p̲A ≤ ½ */
  prediction: number | typeof ABSTAIN;
  /** certified L2 radius σ·Φ⁻¹(p̲A); 0 when abstaining */
  radius: number;
  /** the class guessed from the selection draws (reported even when abstaining) */
  guess: number;
  /** count of the guess among the n estimation draws */
  countA: number;
  /** one-sided (1 − α) Clopper-Pearson lower bound on P(h(x + δ) = guess) */
  pALower: number;
}

export function argmax(counts: Int32Array): number {
  let best = 0;
  for (let c = 1; c < counts.length; c++) if (counts[c] > counts[best]) best = c;
  return best;
}

/**
 * CERTIFY: guess the top class from n₀ draws, count it in n fresh draws,
 * bound its probability from below at level α, and certify radius
 * σ·Φ⁻¹(p̲A) if p̲A > ½, else abstain. With probability ≥ 1 − α over the
 * draws, a returned class is g(x) and g is constant on the L2 ball of that radius.
 */
export async function certify(sampler: Sampler, s: CertifySettings): Promise<Certificate> {
  checkSettings(s);
  const selection = await sampler.sample(s.n0, 'selection');
  const guess = argmax(selection);
  const estimation = await sampler.sample(s.n, 'estimation');
  const countA = estimation[guess];
  const pALower = lowerConfidenceBound(countA, s.n, s.alpha);
  if (pALower < 0.5) return { prediction: ABSTAIN, radius: 0, guess, countA, pALower };
  return { prediction: guess, radius: radiusFor(s.sigma, pALower), guess, countA, pALower };
}

export interface Prediction {
  prediction: number | typeof ABSTAIN;
  /** two-sided binomial test p-value of top count vs runner-up count */
  pValue: number;
  counts: Int32Array;
}

/**
 * PREDICT: the top class of n draws, unless the binomial test cannot tell it
 * from the runner-up at level α (then abstain). With probability ≥ 1 − α a
 * returned class is g(x) (Hung & Fithian 2019's test).
 */
export async function predict(sampler: Sampler, n: number, alpha: number): Promise<Prediction> {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  const counts = await sampler.sample(n, 'prediction');
  const order = Array.from(counts.keys()).sort((a, b) => counts[b] - counts[a] || a - b);
  const [top, second] = order;
  const pValue = binomialTestHalf(counts[top], counts[top] + (second === undefined ? 0 : counts[second]));
  return { prediction: pValue > alpha ? ABSTAIN : top, pValue, counts };
}

export function checkSettings(s: CertifySettings): void {
  if (!(Number.isFinite(s.sigma) && s.sigma > 0)) throw new RangeError(`sigma must be > 0, got ${s.sigma}`);
  if (!(Number.isInteger(s.n0) && s.n0 >= 1)) throw new RangeError(`n0 must be a positive integer, got ${s.n0}`);
  if (!(Number.isInteger(s.n) && s.n >= 1)) throw new RangeError(`n must be a positive integer, got ${s.n}`);
  if (!(s.alpha > 0 && s.alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${s.alpha}`);
}
