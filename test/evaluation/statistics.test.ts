import { mcnemar, pairedCounts, wilson } from '../../src/evaluation/statistics';

describe('statistics', () => {
  it('Wilson interval matches the textbook values', () => {
    // 45/100: 0.3561 … 0.5475 (Newcombe 1998, the Wilson score method).
    const [lo, hi] = wilson(45, 100);
    expect(lo).toBeCloseTo(0.3561, 3);
    expect(hi).toBeCloseTo(0.5475, 3);
    expect(wilson(0, 10)[0]).toBe(0);
    expect(wilson(10, 10)[1]).toBeCloseTo(1, 12);
  });

  it('exact McNemar: 0 vs 10 discordant pairs is p = 2/1024; balanced pairs give p = 1', () => {
    expect(mcnemar(0, 10)).toBeCloseTo(2 / 1024, 12);
    expect(mcnemar(10, 0)).toBeCloseTo(2 / 1024, 12);
    expect(mcnemar(5, 5)).toBe(1);
    expect(mcnemar(0, 0)).toBe(1);
    // 2·P[Bin(20, ½) ≤ 5] = 2·0.020695 = 0.04139
    expect(mcnemar(5, 15)).toBeCloseTo(0.04139, 4);
  });

  it('pairs per-image outcomes', () => {
    expect(pairedCounts('1100', '1010')).toEqual({ onlyA: 1, onlyB: 1, both: 1, neither: 1 });
    expect(() => pairedCounts('1', '10')).toThrow(/length/);
  });
});
