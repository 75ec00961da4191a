import { readFileSync } from 'node:fs';
import { ENSEMBLE_COMBINED, ENSEMBLE_SCHEMA, ENSEMBLE_SETTINGS, ENSEMBLE_VERSION, EnsembleResults } from '../evaluation/ensemble';
import { EnsembleDetection } from '../evaluation/ensemble-detection';
import { UserError } from '../util/errors';

/**
 * An ensemble results.json as Markdown: worst-case robust accuracy per
 * setting and ε first (with 95 % Wilson intervals), then the paired test of
 * f ∘ s against f ∘ AE, then what each member added. Every number comes from
 * the document's counts. Documents of version 2 add the detector's table.
 */
const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
const ci = (r: { accuracy: number; ci: [number, number] }) => `${pct(r.accuracy)} [${(100 * r.ci[0]).toFixed(1)}, ${(100 * r.ci[1]).toFixed(1)}]`;
const auc = (v: number | null) => (v === null ? '–' : v.toFixed(3));
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
  if (r.version !== 1 && r.version !== ENSEMBLE_VERSION) throw new UserError(`${path} has ensemble results version ${String(r.version)}; this tool reads versions 1 to ${ENSEMBLE_VERSION}`);
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
  if (r.detection) out.push(...detectionMarkdown(r, r.detection));
  out.push('Per member (each runs only on the images still robust when its turn comes): images attacked / broken, robust accuracy after it, seconds.', '');
  const memberRows: string[][] = [];
  for (const x of r.rows) {
    memberRows.push([x.setting, String(x.eps), ...x.members.map((m) => `${m.member}: ${m.attacked} / ${m.broken} → ${pct(m.accuracyAfter)} (${m.seconds.toFixed(0)} s)`)]);
  }
  out.push(...table(['setting', 'ε', ...c.members.map((_, i) => `member ${i + 1}`)], memberRows), '');
  const cost = `${r.run.seconds.toFixed(0)} s wall, ${r.run.cpuSeconds.toFixed(0)} CPU s, ${r.run.gradientPasses} gradient passes (image × pass)`;
  const parts = r.run.parts;
  // a run of some of the settings names them
  const partName = (p: NonNullable<typeof parts>[number]) =>
    p.eps.join(', ') + (p.settings && p.settings.length < c.settings.length ? ` [${p.settings.join(', ')}]` : '');
  out.push(parts ? `Cost, summed over the ${parts.length} runs merged (ε = ${parts.map(partName).join('; ')}): ${cost}.` : `Cost: ${cost}.`, '');
  return out.join('\n');
}

/** The detector against the final adversarial examples, worst case first, as the main table. */
function detectionMarkdown(r: EnsembleResults, d: EnsembleDetection): string[] {
  const robust = (setting: string, eps: number) => [...r.combined, ...r.rows].find((x) => x.setting === setting && x.eps === eps);
  const rows: string[][] = [];
  for (const c of d.combined) {
    const x = robust(c.setting, c.eps);
    rows.push([`**${c.setting}**`, String(c.eps), '–', '–', '–', x ? ci(x) : '–', ci(c)]);
  }
  for (const x of d.rows) {
    const rate = x.detectionRate === null ? '–' : `${x.flaggedSuccessful} / ${x.successful} (${pct(x.detectionRate)})`;
    const rr = robust(x.setting, x.eps);
    rows.push([x.setting, String(x.eps), auc(x.auc), auc(x.aucSuccessful), rate, rr ? ci(rr) : '–', ci(x)]);
  }
  return [
    `Detector (${d.detector}, threshold ${Number(d.threshold.toPrecision(4))}; ${d.cleanFlagged} of ${d.clean.length} clean images flagged) on each image's final adversarial example ` +
      '(the one of the member that broke it; for an image that survived, the last member\'s): AUC against the clean scores of the images attacked, ' +
      'over all of them and over the successful examples only; successful examples flagged at the threshold; ' +
      'worst-case robust accuracy beside the accuracy of an operator who rejects flagged inputs (robust or detected, 95 % Wilson interval):',
    '',
    ...table(['setting', 'ε', 'AUC', 'AUC (successful)', 'successful flagged', 'robust', 'robust or detected'], rows),
    '',
  ];
}
