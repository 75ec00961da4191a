import { readFileSync } from 'node:fs';
import { ENSEMBLE_COMBINED, ENSEMBLE_SCHEMA, ENSEMBLE_SETTINGS, EnsembleResults, EnsembleRow } from '../evaluation/ensemble';
import { UserError } from '../util/errors';

/**
 * An ensemble results.json as Markdown: worst-case robust accuracy per
 * setting and ε first (with 95 % Wilson intervals), then the paired test of
 * f ∘ s against f ∘ AE, then what each member added. Every number comes from
 * the document's counts.
 */
const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
const ci = (r: EnsembleRow) => `${pct(r.accuracy)} [${(100 * r.ci[0]).toFixed(1)}, ${(100 * r.ci[1]).toFixed(1)}]`;
const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
const table = (header: string[], rows: string[][]) => [line(header), line(header.map(() => '---')), ...rows.map(line)];

export function readEnsembleResults(path: string): EnsembleResults {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const r = json as EnsembleResults;
  if (r?.schema !== ENSEMBLE_SCHEMA) throw new UserError(`${path} is not an ensemble results file (schema '${String(r?.schema)}')`);
  return r;
}

export function isEnsembleResultsFile(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { schema?: string }).schema === ENSEMBLE_SCHEMA;
  } catch {
    return false;
  }
}

export function ensembleMarkdown(r: EnsembleResults): string {
  const c = r.config;
  const p = c.params;
  const out: string[] = [];
  out.push(
    `Model set \`${r.modelSet.name}\` ${r.modelSet.version}; ${r.data.selected} of ${r.data.size} test images (seeded subset, seed ${c.seed}); ` +
      `noise layer ${c.noise}${c.eotSamples ? ` (EOT over ${c.eotSamples} draws)` : ''}. ` +
      `Ensemble: ${c.members.join(', ')} (APGD ${p.iterations} iterations, ${p.restarts} restart(s)${c.members.includes('apgd-t') ? `, APGD-T on ${p.targetClasses} target classes` : ''}); ` +
      `an image is robust only if it survives every member. Worst-case robust accuracy with 95 % Wilson interval:`,
    '',
  );
  const clean = new Map(r.clean.map((x) => [x.model, x]));
  const header = ['setting', 'clean', ...c.eps.map((e) => `ε = ${e}`)];
  const rows: string[][] = [];
  const describe = new Map<string, string>([...ENSEMBLE_SETTINGS.map((s) => [s.name, s.description] as const), ...ENSEMBLE_COMBINED.map((s) => [s.name, s.description] as const)]);
  for (const name of [...ENSEMBLE_COMBINED.map((s) => s.name), ...c.settings]) {
    const es = c.eps.map((e) => [...r.combined, ...r.rows].find((x) => x.setting === name && x.eps === e));
    if (es.every((x) => !x)) continue;
    const target = es.find(Boolean)!.target;
    const cl = clean.get(target);
    const bold = ENSEMBLE_COMBINED.some((s) => s.name === name);
    rows.push([`${bold ? '**' : ''}${name}${bold ? '**' : ''} — ${describe.get(name) ?? ''}`, cl ? pct(cl.accuracy) : '–', ...es.map((x) => (x ? ci(x) : '–'))]);
  }
  out.push(...table(header, rows), '');
  if (r.comparisons.length) {
    out.push('Paired comparison on the same images (exact McNemar test): images robust under one model only.', '');
    out.push(
      ...table(
        ['ε', 'A', 'B', 'robust only under A', 'only under B', 'p'],
        r.comparisons.map((x) => [String(x.eps), x.a, x.b, String(x.onlyA), String(x.onlyB), x.p < 1e-4 ? x.p.toExponential(1) : x.p.toFixed(4)]),
      ),
      '',
    );
  }
  const graybox = r.rows.filter((x) => x.setting === 'graybox');
  if (graybox.length) {
    out.push(`Gray-box relative accuracy (robust / clean on f): ${graybox.map((x) => `ε = ${x.eps}: ${x.relative === null ? '–' : x.relative.toFixed(3)}`).join(', ')}.`, '');
  }
  out.push('Per member (each runs only on the images still robust when its turn comes): images attacked / broken, robust accuracy after it, seconds.', '');
  const memberRows: string[][] = [];
  for (const x of r.rows) {
    memberRows.push([x.setting, String(x.eps), ...x.members.map((m) => `${m.member}: ${m.attacked} / ${m.broken} → ${pct(m.accuracyAfter)} (${m.seconds.toFixed(0)} s)`)]);
  }
  out.push(...table(['setting', 'ε', ...c.members.map((_, i) => `member ${i + 1}`)], memberRows), '');
  out.push(`Cost: ${r.run.seconds.toFixed(0)} s wall, ${r.run.cpuSeconds.toFixed(0)} CPU s, ${r.run.gradientPasses} gradient passes (image × pass).`, '');
  return out.join('\n');
}
