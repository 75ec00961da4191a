import { emptyHistogram } from './detection';

// Bound once: these loops run per pixel, and global lookups are slow inside vm contexts (jest's).
const { abs, sqrt, max } = Math;


/**
 * Per (attack, setting, ε, noise): counts that add across batches and shards,
 * and the metrics derived from them (docs/protocol.md, "Metrics").
 *
 * Sums of real-valued per-image norms are kept as integers in units of 1e-9
 * (FIXED): integer addition is exact and order-free, so a merge of shards is
 * bit-identical to the unsharded run. 50,000 images × a norm of 100 stay far
 * below 2^53.
 */
export const FIXED = 1e9;

export interface Counts {
  /** images attacked */
  n: number;
  /** clean images the judged model classifies correctly (the true positives, TP) */
  cleanCorrect: number;
  /** adversarial images it still classifies correctly */
  adversarialCorrect: number;
  /** of the TP, how many the attack turned into errors */
  truePositivesFooled: number;
  /** targeted runs: adversarial images classified as the target */
  targetHits: number;
  /** adversarial images the detector flags at the manifest's threshold */
  detected: number;
  /** of the TP the attack fooled, how many the detector flags */
  detectedFooled: number;
  /** Σ max|x' − x| (fixed point, see FIXED) */
  linfSum: number;
  /** Σ ‖x' − x‖₂ / ‖x‖₂ (fixed point) */
  l2Sum: number;
  /** detection scores of the adversarial images (detection.ts SCORE_EDGES) */
  scoreHistogram: number[];
}

export interface Metrics {
  cleanAccuracy: number | null;
  adversarialAccuracy: number | null;
  /** |{x ∈ TP : model(x') ≠ y}| / |TP|; lower is better for the defence */
  defenceStrength: number | null;
  /** adversarial accuracy / clean accuracy */
  relativeAccuracy: number | null;
  /** mean max|x' − x|, pixels in [0, 1] (the paper's normalised L∞) */
  meanLinf: number | null;
  /** mean ‖x' − x‖₂ / ‖x‖₂ (Guo et al.'s normalised dissimilarity) */
  meanL2Dissimilarity: number | null;
  /** flagged adversarial images / n; null when the set has no detector */
  detectionRate: number | null;
  /** flagged among the TP the attack fooled */
  detectionRateFooled: number | null;
  /** targeted runs only */
  targetSuccessRate: number | null;
}

export function emptyCounts(): Counts {
  return {
    n: 0,
    cleanCorrect: 0,
    adversarialCorrect: 0,
    truePositivesFooled: 0,
    targetHits: 0,
    detected: 0,
    detectedFooled: 0,
    linfSum: 0,
    l2Sum: 0,
    scoreHistogram: emptyHistogram(),
  };
}

export function addCounts(into: Counts, c: Counts): Counts {
  into.n += c.n;
  into.cleanCorrect += c.cleanCorrect;
  into.adversarialCorrect += c.adversarialCorrect;
  into.truePositivesFooled += c.truePositivesFooled;
  into.targetHits += c.targetHits;
  into.detected += c.detected;
  into.detectedFooled += c.detectedFooled;
  into.linfSum += c.linfSum;
  into.l2Sum += c.l2Sum;
  if (into.scoreHistogram.length !== c.scoreHistogram.length) throw new Error('addCounts: histograms of different binning');
  c.scoreHistogram.forEach((v, i) => (into.scoreHistogram[i] += v));
  return into;
}

export const toFixed = (v: number): number => Math.round(v * FIXED);

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

export function deriveMetrics(c: Counts, opts: { targeted: boolean; detector: boolean }): Metrics {
  const clean = ratio(c.cleanCorrect, c.n);
  const adv = ratio(c.adversarialCorrect, c.n);
  return {
    cleanAccuracy: clean,
    adversarialAccuracy: adv,
    defenceStrength: ratio(c.truePositivesFooled, c.cleanCorrect),
    relativeAccuracy: adv !== null && clean ? adv / clean : null,
    meanLinf: ratio(c.linfSum / FIXED, c.n),
    meanL2Dissimilarity: ratio(c.l2Sum / FIXED, c.n),
    detectionRate: opts.detector ? ratio(c.detected, c.n) : null,
    detectionRateFooled: opts.detector ? ratio(c.detectedFooled, c.truePositivesFooled) : null,
    targetSuccessRate: opts.targeted ? ratio(c.targetHits, c.n) : null,
  };
}

/**
 * Norms of one adversarial image against its clean original. A black image
 * (‖x‖₂ = 0) would make the dissimilarity infinite; its denominator is
 * floored at one grey level so the mean stays finite.
 */
export function perturbationNorms(adv: Float32Array, x: Float32Array, offset: number, size: number): { linf: number; l2: number } {
  let linf = 0;
  let d2 = 0;
  let x2 = 0;
  for (let i = offset; i < offset + size; i++) {
    const d = abs(adv[i] - x[i]);
    if (d > linf) linf = d;
    d2 += d * d;
    x2 += x[i] * x[i];
  }
  return { linf, l2: sqrt(d2) / max(sqrt(x2), 1 / 255) };
}
