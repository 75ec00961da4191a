import { mcnemar, wilson } from '../evaluation/statistics';
import { Rng } from '../util/random';
import { UserError } from '../util/errors';
import type { CertifyResults, ModelCertification } from './results';

/**
 * Two smoothed classifiers certified on the same images with the same noise
 * draws, compared at one radius: which images each certifies correctly at
 * that radius, the exact McNemar test on the discordant pairs, and the ratio
 * of their certified accuracies with a paired percentile-bootstrap interval
 * (images resampled with their pair of outcomes). Goals such as "≥ 0.9× the
 * noise-trained classifier" are judged on the ratio and its interval, not on
 * the point estimate alone.
 */
export interface PairedCertification {
  a: string;
  b: string;
  radius: number;
  images: number;
  both: number;
  onlyA: number;
  onlyB: number;
  accuracyA: number;
  accuracyB: number;
  /** Wilson 95 % intervals of each accuracy */
  intervalA: [number, number];
  intervalB: [number, number];
  /** accuracyA / accuracyB */
  ratio: number;
  /** 95 % paired bootstrap interval of the ratio */
  ratioInterval: [number, number];
  /** exact two-sided McNemar p */
  p: number;
}

function find(r: CertifyResults, name: string): ModelCertification {
  const hits = r.models.filter((m) => m.name === name);
  if (hits.length === 0) throw new UserError(`no model '${name}' in this certify.json (models: ${[...new Set(r.models.map((m) => m.name))].join(', ')})`);
  if (hits.length > 1) throw new UserError(`'${name}' was certified at several σ (${hits.map((m) => m.sigma).join(', ')}); compare runs at one σ`);
  return hits[0];
}

export function compareAtRadius(r: CertifyResults, a: string, b: string, radius: number, o: { resamples?: number; seed?: number } = {}): PairedCertification {
  const ma = find(r, a);
  const mb = find(r, b);
  const rows = ma.images.map((c) => c.row);
  if (rows.join() !== mb.images.map((c) => c.row).join()) throw new UserError(`'${a}' and '${b}' were not certified on the same images`);
  const hit = (m: ModelCertification) => m.images.map((c) => c.correct && c.radius >= radius);
  const x = hit(ma);
  const y = hit(mb);
  const n = x.length;
  let both = 0;
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < n; i++) {
    if (x[i] && y[i]) both++;
    else if (x[i]) onlyA++;
    else if (y[i]) onlyB++;
  }
  const kA = both + onlyA;
  const kB = both + onlyB;
  const resamples = o.resamples ?? 10000;
  const rng = new Rng(o.seed ?? 0);
  const ratios: number[] = [];
  for (let s = 0; s < resamples; s++) {
    let sa = 0;
    let sb = 0;
    for (let i = 0; i < n; i++) {
      const j = rng.int(n);
      if (x[j]) sa++;
      if (y[j]) sb++;
    }
    ratios.push(sb === 0 ? Infinity : sa / sb);
  }
  ratios.sort((p, q) => p - q);
  const at = (q: number) => ratios[Math.min(resamples - 1, Math.floor(q * resamples))];
  return {
    a,
    b,
    radius,
    images: n,
    both,
    onlyA,
    onlyB,
    accuracyA: kA / n,
    accuracyB: kB / n,
    intervalA: wilson(kA, n),
    intervalB: wilson(kB, n),
    ratio: kB === 0 ? Infinity : kA / kB,
    ratioInterval: [at(0.025), at(0.975)],
    p: mcnemar(onlyA, onlyB),
  };
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

/** One Markdown table row per comparison. */
export function comparisonMarkdown(rows: PairedCertification[]): string {
  const head = '| A | B | radius | images | A | B | only A | only B | A / B (95 % CI) | McNemar p |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n';
  return (
    head +
    rows
      .map((c) => `| ${c.a} | ${c.b} | ${c.radius} | ${c.images} | ${pct(c.accuracyA)} | ${pct(c.accuracyB)} | ${c.onlyA} | ${c.onlyB} | ${c.ratio.toFixed(3)} (${c.ratioInterval[0].toFixed(3)}–${c.ratioInterval[1].toFixed(3)}) | ${c.p < 1e-4 ? c.p.toExponential(1) : c.p.toFixed(4)} |`)
      .join('\n') +
    '\n'
  );
}
