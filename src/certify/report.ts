import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import normalQuantile = require('@stdlib/stats-base-dists-normal-quantile');
import { certifiedAccuracyChart } from '../report/certified-accuracy';
import { STYLE, esc, num, pct, table } from '../report/html';
import { renderSvg } from '../report/vega';
import { UserError } from '../util/errors';
import { CERTIFY_FILE, CertifyResults, REPORT_RADII } from './results';

export const CERTIFY_REPORT = 'certify.html';

export function readCertifyResults(dir: string): CertifyResults {
  const path = join(dir, CERTIFY_FILE);
  let json: CertifyResults;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as CertifyResults;
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (json.kind !== 's2s-certify') throw new UserError(`${path} is not a certify.json (kind ${String(json.kind)})`);
  return json;
}

/** The table of certified accuracy at the reported radii, as Markdown (for the README and docs). */
export function certifyMarkdown(r: CertifyResults): string {
  const head = ['base classifier', 'σ', ...REPORT_RADII.map((x) => `r = ${x}`), 'abstained', 's/image'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const m of r.models) {
    const cells = [m.name, String(m.sigma), ...REPORT_RADII.map((x) => pct(m.summary.certifiedAccuracy[String(x)])), `${m.summary.abstained}/${m.summary.images}`, num(m.summary.secondsPerImage, 2)];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

/** OUT/certify.html: the curve, the table and what the numbers mean. */
export async function writeCertifyReport(dir: string): Promise<string> {
  const r = readCertifyResults(dir);
  const svg = await renderSvg(certifiedAccuracyChart(r, (p) => normalQuantile(p, 0, 1)));
  const rows = r.models.map((m) => [esc(m.name), num(m.sigma, 2), ...REPORT_RADII.map((x) => pct(m.summary.certifiedAccuracy[String(x)])), `${m.summary.abstained}/${m.summary.images}`, num(m.summary.secondsPerImage, 2)]);
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Certified robustness — ${esc(r.modelSet.name)}</title><style>${STYLE}</style></head><body>
<h1>Certified L2 robustness by randomized smoothing — ${esc(r.modelSet.name)} ${esc(r.modelSet.version)}</h1>
<p class="meta">CERTIFY (Cohen, Rosenfeld &amp; Kolter 2019) with n₀ = ${r.settings.n0} selection and n = ${r.settings.n} estimation draws per image, one-sided Clopper-Pearson bound at α = ${r.settings.alpha}, seeded noise (seed ${r.settings.seed}); ${r.data.rows.length} images of ${esc(r.data.source)}${r.complete ? '' : ' — <span class="bad">INCOMPLETE run</span>'}${r.cost ? `; ${num(r.cost.seconds, 0)} s wall, ${num(r.cost.cpuSeconds, 0)} s CPU` : ''}.</p>
<div class="chart">${svg}</div>
<p class="note">Compare the shape with Cohen et al.'s Figure 7 and Salman et al.'s Figure 3: each curve starts at the smoothed classifier's clean accuracy and steps down to 0 before the dotted ceiling σ·Φ⁻¹(α^{1/n}), the largest radius n draws can certify; larger σ starts lower and reaches further. A certificate is for the smoothed classifier g at level α, against L2 perturbations only; it says nothing about the base classifier (f ∘ s) itself.</p>
${table(['base classifier', 'σ', ...REPORT_RADII.map((x) => `r = ${x}`), 'abstained', 's/image'], rows)}
</body></html>
`;
  const path = join(dir, CERTIFY_REPORT);
  writeFileSync(path, html);
  return path;
}
