import { fillNoise, resolveSigma } from '../../src/serving/noise';

const policy = { kind: 'gaussian' as const, sigma: 0.02, maxSigma: 0.1 };

describe('resolveSigma', () => {
  it('applies the operator floor when the client asks for nothing or for less', () => {
    expect(resolveSigma(policy, undefined)).toBe(0.02);
    expect(resolveSigma(policy, 0)).toBe(0.02);
    expect(resolveSigma(policy, 0.01)).toBe(0.02);
  });
  it('lets the client raise noise up to the maximum', () => {
    expect(resolveSigma(policy, 0.05)).toBe(0.05);
    expect(resolveSigma(policy, 0.1)).toBe(0.1);
  });
  it('refuses more than the maximum, negative and non-finite values with 400', () => {
    for (const v of [0.11, -0.1, NaN, Infinity]) expect(() => resolveSigma(policy, v)).toThrow(expect.objectContaining({ statusCode: 400 }));
  });
});

describe('fillNoise', () => {
  const n = 200_000;
  const stats = (a: Float32Array) => {
    let s = 0;
    let s2 = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const v of a) {
      s += v;
      s2 += v * v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const mean = s / a.length;
    return { mean, std: Math.sqrt(s2 / a.length - mean * mean), min, max };
  };

  // Tolerances are many standard errors wide (std error of the mean ≈ σ/447 here), so a correct generator passes.
  it('gaussian: mean 0, standard deviation sigma', () => {
    const a = new Float32Array(n);
    fillNoise(a, 0, n, 'gaussian', 0.1);
    const s = stats(a);
    expect(Math.abs(s.mean)).toBeLessThan(0.002);
    expect(Math.abs(s.std - 0.1)).toBeLessThan(0.002);
  });
  it('uniform: within ±sigma, standard deviation sigma/√3', () => {
    const a = new Float32Array(n);
    fillNoise(a, 0, n, 'uniform', 0.1);
    const s = stats(a);
    expect(s.min).toBeGreaterThanOrEqual(-0.1);
    expect(s.max).toBeLessThanOrEqual(0.1);
    expect(Math.abs(s.std - 0.1 / Math.sqrt(3))).toBeLessThan(0.002);
  });
  it('sign: only ±sigma, about half each', () => {
    const a = new Float32Array(n);
    fillNoise(a, 0, n, 'sign', 0.05);
    expect(new Set(a)).toEqual(new Set([Math.fround(0.05), Math.fround(-0.05)]));
    expect(Math.abs(stats(a).mean)).toBeLessThan(0.002);
  });
  it('writes only its slice, zeros for sigma 0, and never repeats a draw', () => {
    const a = new Float32Array(10).fill(7);
    fillNoise(a, 3, 5, 'gaussian', 0.1);
    expect([a[0], a[1], a[2], a[8], a[9]]).toEqual([7, 7, 7, 7, 7]);
    fillNoise(a, 3, 5, 'gaussian', 0);
    expect(Array.from(a.subarray(3, 8))).toEqual([0, 0, 0, 0, 0]);
    const x = new Float32Array(64);
    const y = new Float32Array(64);
    fillNoise(x, 0, 64, 'gaussian', 1);
    fillNoise(y, 0, 64, 'gaussian', 1);
    expect(Array.from(x)).not.toEqual(Array.from(y));
  });
});
