/**
 * Intervals and tests for accuracies measured on a few hundred images, so a
 * difference between two defences can be told from sampling noise.
 */

/** Wilson score interval for k successes in n trials (z = 1.96: 95 %). */
export function wilson(k: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** log C(n, k) by summing logs (n is at most a few thousand here). */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/**
 * Exact two-sided McNemar test on paired outcomes: `onlyA` images right under
 * A only, `onlyB` under B only. Under H0 the discordant pairs split 50:50, so
 * p = min(1, 2·P[Bin(b + c, ½) ≤ min(b, c)]).
 */
export function mcnemar(onlyA: number, onlyB: number): number {
  const n = onlyA + onlyB;
  if (n === 0) return 1;
  const m = Math.min(onlyA, onlyB);
  let tail = 0;
  for (let i = 0; i <= m; i++) tail += Math.exp(logChoose(n, i) - n * Math.LN2);
  return Math.min(1, 2 * tail);
}

/** Paired comparison of two per-image outcome strings ('1' = right/robust). */
export function pairedCounts(a: string, b: string): { onlyA: number; onlyB: number; both: number; neither: number } {
  if (a.length !== b.length) throw new Error(`paired outcomes differ in length: ${a.length} vs ${b.length}`);
  const r = { onlyA: 0, onlyB: 0, both: 0, neither: 0 };
  for (let i = 0; i < a.length; i++) {
    const x = a[i] === '1';
    const y = b[i] === '1';
    if (x && y) r.both++;
    else if (x) r.onlyA++;
    else if (y) r.onlyB++;
    else r.neither++;
  }
  return r;
}
