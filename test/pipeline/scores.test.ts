import { argmax, flaggedRate, klScores, psnrPerImage, thresholdAt } from '../../src/pipeline/scores';

describe('detection scores and thresholds', () => {
  it('KL of identical logits is 0 and matches a hand computation otherwise', () => {
    const clean = Float32Array.from([1, 2, 3, 0, 0, 0]);
    const same = klScores(clean, clean, 3);
    expect(same[0]).toBeCloseTo(0, 12);
    expect(same[1]).toBeCloseTo(0, 12);
    // p = softmax(0, ln 3) = (1/4, 3/4); q = uniform (1/2, 1/2)
    const kl = klScores(Float32Array.from([0, Math.log(3)]), Float32Array.from([5, 5]), 2)[0];
    const expected = 0.25 * Math.log(0.25 / 0.5) + 0.75 * Math.log(0.75 / 0.5);
    expect(kl).toBeCloseTo(expected, 6);
  });

  it('the threshold flags at most the requested fraction of the calibration scores', () => {
    const scores = Float64Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000);
    const t = thresholdAt(scores, 0.05);
    expect(t).toBe(949);
    expect(flaggedRate(scores, t)).toBeCloseTo(0.05, 10);
    // With 101 scores, 5% of 101 = 5.05: at most 5 may exceed.
    const odd = Float64Array.from({ length: 101 }, (_, i) => i);
    const t2 = thresholdAt(odd, 0.05);
    expect(odd.filter((s) => s > t2).length).toBe(5);
  });

  it('NaN scores count as flagged, as in serving', () => {
    expect(flaggedRate([0, NaN, 0.5], 1)).toBeCloseTo(1 / 3, 10);
  });

  it('argmax takes the first of tied maxima', () => {
    expect(argmax(Float32Array.from([0, 3, 3, 1]), 0, 4)).toBe(1);
    expect(argmax(Float32Array.from([0, 3, 3, 1, 9, 0, 0, 0]), 1, 4)).toBe(0);
  });

  it('PSNR of a uniform error of 0.1 is 20 dB; a perfect copy is finite', () => {
    const x = new Float32Array(8).fill(0.5);
    const y = new Float32Array(8).fill(0.6);
    const p = psnrPerImage(x, y, 4);
    expect(p[0]).toBeCloseTo(20, 4);
    expect(p[1]).toBeCloseTo(20, 4);
    expect(Number.isFinite(psnrPerImage(x, x, 8)[0])).toBe(true);
  });
});
