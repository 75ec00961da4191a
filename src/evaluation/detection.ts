/**
 * Detection scores as mergeable histograms. The score (KL between f(x) and
 * f(s(x)), src/pipeline/scores.ts) is binned on a fixed log grid, so shards
 * add their counts and the merged ROC is the one an unsharded run draws.
 * Rates at the manifest's threshold are counted exactly, per image, not read
 * off the bins.
 */

/** 0, then 10 bins per decade from 1e-8 to 1e2; the last bin is open above (and holds NaN). */
export const SCORE_EDGES: readonly number[] = [0, ...Array.from({ length: 101 }, (_, i) => Number((10 ** (-8 + i / 10)).toPrecision(6)))];

export function emptyHistogram(): number[] {
  return new Array(SCORE_EDGES.length).fill(0);
}

export function binOf(score: number): number {
  if (!(score >= SCORE_EDGES[1])) return Number.isNaN(score) ? SCORE_EDGES.length - 1 : 0;
  let lo = 1;
  let hi = SCORE_EDGES.length - 1;
  // largest j with edges[j] <= score
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (SCORE_EDGES[mid] <= score) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The service's flag rule (src/serving/detection.ts): above the threshold, or NaN. */
export function flagged(score: number, threshold: number): boolean {
  return score > threshold || Number.isNaN(score);
}

export interface RocPoint {
  threshold: number;
  falsePositiveRate: number;
  truePositiveRate: number;
}

/**
 * ROC of "adversarial vs clean" from two histograms: one point per bin edge
 * (flag when score ≥ edge), from (1, 1) at edge 0 down to (0, 0).
 */
export function rocFromHistograms(clean: readonly number[], adversarial: readonly number[]): { points: RocPoint[]; auc: number } | null {
  const nc = clean.reduce((a, b) => a + b, 0);
  const na = adversarial.reduce((a, b) => a + b, 0);
  if (nc === 0 || na === 0) return null;
  const points: RocPoint[] = [];
  let c = nc;
  let a = na;
  for (let j = 0; j < SCORE_EDGES.length; j++) {
    points.push({ threshold: SCORE_EDGES[j], falsePositiveRate: c / nc, truePositiveRate: a / na });
    c -= clean[j];
    a -= adversarial[j];
  }
  points.push({ threshold: Infinity, falsePositiveRate: 0, truePositiveRate: 0 });
  let auc = 0;
  for (let j = 1; j < points.length; j++) {
    const p = points[j - 1];
    const q = points[j];
    auc += ((p.falsePositiveRate - q.falsePositiveRate) * (p.truePositiveRate + q.truePositiveRate)) / 2;
  }
  return { points, auc };
}

/** The AUC of that ROC, or null when either histogram is empty. */
export function aucOfHistograms(clean: readonly number[], adversarial: readonly number[]): number | null {
  return rocFromHistograms(clean, adversarial)?.auc ?? null;
}
