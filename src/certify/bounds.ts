import betaQuantile = require('@stdlib/stats-base-dists-beta-quantile');
import binomialCdf = require('@stdlib/stats-base-dists-binomial-cdf');
import normalQuantile = require('@stdlib/stats-base-dists-normal-quantile');

/**
 * The statistics of randomized smoothing (Cohen, Rosenfeld & Kolter 2019),
 * exactly as published: a one-sided Clopper-Pearson lower bound on the top
 * class's probability for CERTIFY, the two-sided exact binomial test against
 * p = ½ for PREDICT, and the radius σ·Φ⁻¹(p). The quantiles come from
 * stdlib's maintained implementations, not hand-written numerics.
 */

/**
 * One-sided (1 − α) Clopper-Pearson lower bound on a binomial proportion
 * after `successes` of `trials`: the α quantile of Beta(k, n − k + 1), and 0
 * when nothing succeeded. Same as statsmodels' proportion_confint(k, n,
 * alpha=2α, method="beta")[0], which Cohen et al.'s code uses.
 */
export function lowerConfidenceBound(successes: number, trials: number, alpha: number): number {
  checkCounts(successes, trials);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (successes === 0) return 0;
  return betaQuantile(alpha, successes, trials - successes + 1);
}

/**
 * Two-sided p-value of the exact binomial test of `k` successes in `n`
 * trials against p = ½ (scipy's binomtest(k, n, 0.5).pvalue). For p = ½ the
 * distribution is symmetric, so the p-value is twice the smaller tail, at most 1.
 */
export function binomialTestHalf(k: number, n: number): number {
  checkCounts(k, n);
  if (n === 0) return 1;
  const low = Math.min(k, n - k);
  if (2 * low === n) return 1;
  return Math.min(1, 2 * binomialCdf(low, n, 0.5));
}

/** Certified L2 radius for a lower bound p̲A on the top class's probability (Cohen et al., Theorem 1 with p̲B = 1 − p̲A). */
export function radiusFor(sigma: number, pALower: number): number {
  if (!(pALower > 0.5)) return 0;
  if (pALower >= 1) return Infinity;
  return sigma * normalQuantile(pALower, 0, 1);
}

function checkCounts(k: number, n: number): void {
  if (!(Number.isInteger(k) && Number.isInteger(n) && k >= 0 && n >= 0 && k <= n)) throw new RangeError(`counts must be integers with 0 ≤ k ≤ n, got k=${k}, n=${n}`);
}
