import { quantize } from '../../src/attacks/pixels';
import { SCORE_EDGES, binOf, emptyHistogram, rocFromHistograms } from '../../src/evaluation/detection';
import { FIXED, addCounts, deriveMetrics, emptyCounts, perturbationNorms, toFixed } from '../../src/evaluation/metrics';
import { parseShard, selectRows, shardSlice } from '../../src/evaluation/selection';
import { modelsNeeded, parseSettings } from '../../src/evaluation/settings';
import { parseAttacks } from '../../src/evaluation/plan';

describe('metrics', () => {
  it('derives the protocol’s metrics from counts', () => {
    const c = { ...emptyCounts(), n: 10, cleanCorrect: 8, adversarialCorrect: 2, truePositivesFooled: 6, detected: 5, detectedFooled: 3, linfSum: toFixed(0.5), l2Sum: toFixed(1.25) };
    const m = deriveMetrics(c, { targeted: false, detector: true });
    expect(m).toEqual({
      cleanAccuracy: 0.8,
      adversarialAccuracy: 0.2,
      defenceStrength: 0.75,
      relativeAccuracy: 0.25,
      meanLinf: 0.05,
      meanL2Dissimilarity: 0.125,
      detectionRate: 0.5,
      detectionRateFooled: 0.5,
      targetSuccessRate: null,
    });
    expect(deriveMetrics(emptyCounts(), { targeted: true, detector: false })).toEqual(
      expect.objectContaining({ cleanAccuracy: null, relativeAccuracy: null, detectionRate: null, targetSuccessRate: null }),
    );
  });

  it('adds fixed-point sums exactly, in any order', () => {
    const values = [0.1, 0.2, 0.3, 1 / 3, 2 / 7, 0.05];
    const sum = (order: number[]) => order.reduce((a, i) => a + toFixed(values[i]), 0);
    expect(sum([0, 1, 2, 3, 4, 5])).toBe(sum([5, 3, 1, 4, 0, 2]));
    const a = { ...emptyCounts(), n: 2, linfSum: toFixed(0.1) + toFixed(0.2) };
    const b = { ...emptyCounts(), n: 1, linfSum: toFixed(0.3) };
    expect(addCounts(addCounts(emptyCounts(), a), b).linfSum / FIXED).toBeCloseTo(0.6, 12);
  });

  it('measures L∞ and ‖δ‖₂/‖x‖₂ per image', () => {
    const x = Float32Array.of(0.5, 0.5, 0, 0, 0.2, 0.4, 0.6, 0.8);
    const adv = Float32Array.of(0.5, 0.6, 0, 0, 0.1, 0.4, 0.6, 0.8);
    const first = perturbationNorms(adv, x, 0, 4);
    expect(first.linf).toBeCloseTo(0.1, 6);
    expect(first.l2).toBeCloseTo(0.1 / Math.sqrt(0.5), 5);
    expect(perturbationNorms(adv, x, 4, 4).l2).toBeCloseTo(0.1 / Math.sqrt(0.04 + 0.16 + 0.36 + 0.64), 5);
    // a black image: the denominator is floored at one grey level
    expect(perturbationNorms(Float32Array.of(2 / 255), Float32Array.of(0), 0, 1).l2).toBeCloseTo(2, 5);
  });
});

describe('the 8-bit grid inside the ε-ball', () => {
  it('rounds to the nearest level the ball contains', () => {
    const x = Float32Array.of(100 / 255, 100 / 255, 0, 1, 100 / 255);
    // ε = 0.01 is 2.55 levels: +2.6 levels would round to 3, outside the ball → 2
    const adv = Float32Array.of(102.6 / 255, 97.6 / 255, -0.5, 1.5, 100.4 / 255);
    expect(Array.from(quantize(adv, x, 0.01), (v) => Math.round(v * 255))).toEqual([102, 98, 0, 255, 100]);
    // an ε that falls on the grid (4/255) keeps its edge level despite float32 k/255
    expect(Math.round(quantize(Float32Array.of(96 / 255), Float32Array.of(100 / 255), 4 / 255)[0] * 255)).toBe(96);
  });
});

describe('detection histograms', () => {
  it('bins on a fixed log grid and draws the ROC from the histograms', () => {
    expect(binOf(0)).toBe(0);
    expect(binOf(1e-9)).toBe(0);
    expect(binOf(NaN)).toBe(SCORE_EDGES.length - 1);
    expect(binOf(1e6)).toBe(SCORE_EDGES.length - 1);
    expect(SCORE_EDGES[binOf(0.05)]).toBeLessThanOrEqual(0.05);
    expect(SCORE_EDGES[binOf(0.05) + 1]).toBeGreaterThan(0.05);

    const clean = emptyHistogram();
    const adv = emptyHistogram();
    for (const s of [1e-5, 2e-5, 3e-4, 1e-3]) clean[binOf(s)]++;
    for (const s of [0.5, 0.8, 2, 3]) adv[binOf(s)]++;
    expect(rocFromHistograms(clean, adv)!.auc).toBeCloseTo(1, 10);
    expect(rocFromHistograms(clean, clean)!.auc).toBeCloseTo(0.5, 10);
    expect(rocFromHistograms(emptyHistogram(), adv)).toBeNull();
  });
});

describe('selection and shards', () => {
  it('--limit draws the same rows for the same seed; shards are disjoint and cover the selection', () => {
    const rows = selectRows(1000, 37, 5);
    expect(rows).toEqual(selectRows(1000, 37, 5));
    expect(rows).not.toEqual(selectRows(1000, 37, 6));
    expect(new Set(rows).size).toBe(37);
    expect([...rows].sort((a, b) => a - b)).toEqual(rows);
    for (const n of [1, 2, 3, 8, 37, 50]) {
      const parts = Array.from({ length: n }, (_, i) => shardSlice(rows, { index: i, count: n }));
      expect(parts.flat()).toEqual(rows);
      expect(Math.max(...parts.map((p) => p.length)) - Math.min(...parts.map((p) => p.length))).toBeLessThanOrEqual(1);
    }
    expect(selectRows(10, undefined, 1)).toEqual([...Array(10).keys()]);
  });

  it('parses i/n with i counted from 0', () => {
    expect(parseShard('3/8')).toEqual({ index: 3, count: 8 });
    expect(() => parseShard('8/8')).toThrow(/below n/);
    expect(() => parseShard('1-8')).toThrow(/i\/n/);
  });
});

describe('settings and attack plans', () => {
  it('maps every setting to its gradient source and judged model', () => {
    const s = parseSettings('graybox,undefended,whitebox-prime');
    expect(s.map((x) => [x.name, x.source, x.target])).toEqual([
      ['undefended', 'f', 'f'],
      ['whitebox-prime', 'f', 'fs'],
      ['graybox', 'fs', 'f'],
    ]);
    expect([...modelsNeeded(parseSettings('autoencoder'))]).toEqual(['fae']);
    expect(() => parseSettings('blackbox')).toThrow(/unknown setting 'blackbox'/);
  });

  it('reads attack lists with the +eot modifier', () => {
    expect(parseAttacks('fgsm, BIM,pgd+eot', {}).map((p) => [p.id, p.attack.name, p.eot])).toEqual([
      ['fgsm', 'fgsm', false],
      ['bim', 'bim', false],
      ['pgd+eot', 'pgd', true],
    ]);
    expect(() => parseAttacks('pgd+foo', {})).toThrow(/unknown attack 'pgd\+foo'/);
  });
});
