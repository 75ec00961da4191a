import { EnsembleResults } from '../../src/evaluation/ensemble';
import { wilson } from '../../src/evaluation/statistics';

/** Helpers the worst-case report tests share: reading a report's blocks and rows, and writing figures as the prose does. */

/** The text between `<!-- ensemble:id -->` and its closing marker. */
export const block = (text: string, id: string) => new RegExp(`<!-- ensemble:${id} -->\\n([\\s\\S]*?)<!-- /ensemble:${id} -->`).exec(text)?.[1];

/** A run's row (combined or per setting) at ε; throws if the run has none. */
export const outcome = (r: EnsembleResults, setting: string, eps: number) => {
  const row = [...r.combined, ...r.rows].find((x) => x.setting === setting && x.eps === eps);
  if (!row) throw new Error(`no ${setting} row at ε = ${eps}`);
  return row;
};

/** p as the prose writes it: two significant digits, exponent form below 0.001. */
export const shownP = (p: number) => (p >= 0.001 ? String(Number(p.toPrecision(2))) : p.toExponential(1));

/** A count of 1,000 images as a percentage with one decimal. */
export const pct = (n: number) => (n / 10).toFixed(1);

/** A 95 % Wilson interval as the prose writes it. */
export const interval = (k: number, n: number) => wilson(k, n).map((v) => (v * 100).toFixed(1)).join(', ');

/** Images robust (or robust or detected) in every one of the outcome strings. */
export const robustUnderAll = (...rows: string[]) => [...rows[0]].filter((_, i) => rows.every((r) => r[i] === '1')).length;
