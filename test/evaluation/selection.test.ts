import { selectRows, shardSlice, spreadSubset } from '../../src/evaluation/selection';

describe('--attack-limit subset', () => {
  const rows = selectRows(10000, 2000, 0);

  it('takes N distinct selected rows, the same for any shard split', () => {
    const sub = spreadSubset(rows, 100);
    expect(new Set(sub).size).toBe(100);
    for (const r of sub) expect(rows).toContain(r);
    for (const n of [1, 2, 3, 7]) {
      const perShard = Array.from({ length: n }, (_, i) => shardSlice(rows, { index: i, count: n }).filter((r) => sub.includes(r)));
      expect(perShard.flat()).toEqual(sub);
    }
  });

  it('gives every contiguous shard its share of the costly attack', () => {
    const sub = new Set(spreadSubset(rows, 100));
    for (let i = 0; i < 4; i++) {
      const mine = shardSlice(rows, { index: i, count: 4 }).filter((r) => sub.has(r));
      expect(mine.length).toBe(25);
    }
  });

  it('is the whole selection when N reaches its size', () => {
    expect(spreadSubset(rows.slice(0, 10), 50)).toEqual(rows.slice(0, 10));
  });
});
