import { binomialTestHalf, lowerConfidenceBound, radiusFor } from '../../src/certify/bounds';

/**
 * Known values computed once with SciPy 1.17.1:
 *   beta.ppf(alpha, k, n - k + 1)   (= statsmodels proportion_confint(k, n, 2α, 'beta')[0], Cohen et al.'s bound)
 *   norm.ppf(p)
 *   binomtest(k, n, 0.5).pvalue
 */
const LOWER_001: Array<[number, number, number, number | null]> = [
  // k, n, Clopper-Pearson lower bound at α = 0.001, Φ⁻¹(bound)
  [10000, 10000, 0.9993094630025899, 3.1985775147383384],
  [9990, 10000, 0.9975883080325683, 2.818598300398245],
  [9000, 10000, 0.8904097336749064, 1.228710061029985],
  [5000, 10000, 0.484502946113578, null],
  [1000, 1000, 0.9931160484209338, 2.4632626147808114],
  [990, 1000, 0.9760361871553114, 1.9780095821411994],
  [600, 1000, 0.5510754739370525, 0.1283789963055296],
  [100, 100, 0.933254300796991, 1.5004750241206364],
  [1, 10, 0.00010004502852067863, null],
  [50, 100, 0.34479800642531777, null],
];

describe('Clopper-Pearson lower bound', () => {
  it.each(LOWER_001)('k=%i of n=%i at α=0.001 matches SciPy', (k, n, bound) => {
    expect(lowerConfidenceBound(k, n, 0.001)).toBeCloseTo(bound, 10);
  });

  it('matches SciPy at α = 0.05', () => {
    expect(lowerConfidenceBound(7, 10, 0.05)).toBeCloseTo(0.39337578389458766, 10);
    expect(lowerConfidenceBound(97, 100, 0.05)).toBeCloseTo(0.92428920625017, 10);
  });

  it('is 0 when nothing succeeded and α^(1/n) when everything did', () => {
    expect(lowerConfidenceBound(0, 10, 0.001)).toBe(0);
    expect(lowerConfidenceBound(10, 10, 0.001)).toBeCloseTo(Math.pow(0.001, 1 / 10), 12);
  });

  it('refuses impossible counts and levels', () => {
    expect(() => lowerConfidenceBound(11, 10, 0.001)).toThrow(/0 ≤ k ≤ n/);
    expect(() => lowerConfidenceBound(1.5, 10, 0.001)).toThrow(/integers/);
    expect(() => lowerConfidenceBound(5, 10, 0)).toThrow(/alpha/);
  });
});

describe('radius σ·Φ⁻¹(p̲A)', () => {
  it.each(LOWER_001.filter((r) => r[3] !== null))('k=%i of n=%i gives σ·Φ⁻¹ of the bound', (k, n, bound, z) => {
    expect(radiusFor(0.25, bound)).toBeCloseTo(0.25 * z!, 8);
  });

  it('is 0 at or below one half', () => {
    expect(radiusFor(0.5, 0.5)).toBe(0);
    expect(radiusFor(0.5, 0.484502946113578)).toBe(0);
  });
});

describe('two-sided binomial test against ½', () => {
  it.each([
    [60, 100, 0.05688793364098089],
    [70, 100, 7.85013964559367e-5],
    [520, 1000, 0.2174482932041415],
    [9, 9, 0.00390625],
    [10, 10, 0.001953125],
    [8, 10, 0.109375],
    [2, 10, 0.109375],
  ])('k=%i of n=%i matches SciPy', (k, n, p) => {
    expect(binomialTestHalf(k, n)).toBeCloseTo(p, 12);
  });

  it('is 1 for an even split and for no trials', () => {
    expect(binomialTestHalf(5, 10)).toBe(1);
    expect(binomialTestHalf(0, 0)).toBe(1);
  });
});
