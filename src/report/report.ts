import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GRADIENT_MODELS, GRADIENT_MODEL_NAMES, GradientResults, GRADIENTS_SCHEMA, GradientModel } from '../evaluation/gradients';
import { Entry, EvalResults, findEntry, readResults } from '../evaluation/results';
import { SETTINGS } from '../evaluation/settings';
import { TRANSFER_SCHEMA, TransferResults } from '../evaluation/transfer';
import { UserError } from '../util/errors';
import { accuracyChart, rocChart, transferChart } from './charts';
import { STYLE, esc, num, pct, table } from './html';
import { fromBase64, perturbation, pngDataUri } from './images';
import { ChartSpec, renderSvg } from './vega';

/**
 * OUT/report.html: one self-contained page (charts as inline SVG rendered
 * here, images as PNG data URIs) from whatever of results.json,
 * gradients.json and transfer.json the folder holds, so `s2s eval`,
 * `s2s gradients` and `s2s transfer` run with the same --out give one report.
 */
export const RESULTS_FILE = 'results.json';
export const GRADIENTS_FILE = 'gradients.json';
export const TRANSFER_FILE = 'transfer.json';
export const REPORT_FILE = 'report.html';

export interface ReportInputs {
  results?: EvalResults;
  gradients?: GradientResults;
  transfer?: TransferResults;
}

function readJson<T extends { schema: string }>(path: string, schema: string): T | undefined {
  if (!existsSync(path)) return undefined;
  const v = JSON.parse(readFileSync(path, 'utf8')) as T;
  if (v.schema !== schema) throw new UserError(`${path} is not a ${schema} document (schema '${v.schema}')`);
  return v;
}

export function readReportInputs(dir: string): ReportInputs {
  const resultsPath = join(dir, RESULTS_FILE);
  return {
    results: existsSync(resultsPath) ? readResults(resultsPath) : undefined,
    gradients: readJson<GradientResults>(join(dir, GRADIENTS_FILE), GRADIENTS_SCHEMA),
    transfer: readJson<TransferResults>(join(dir, TRANSFER_FILE), TRANSFER_SCHEMA),
  };
}

/** Renders OUT/report.html from the JSON documents in OUT; returns its path. */
export async function writeReport(dir: string): Promise<string> {
  const inputs = readReportInputs(dir);
  if (!inputs.results && !inputs.gradients && !inputs.transfer) {
    throw new UserError(`${dir} holds none of ${RESULTS_FILE}, ${GRADIENTS_FILE}, ${TRANSFER_FILE}; nothing to report`);
  }
  const path = join(dir, REPORT_FILE);
  writeFileSync(path, await renderReport(inputs));
  return path;
}

async function chart(spec: ChartSpec | null, label: string): Promise<string> {
  if (!spec) return '';
  return `<figure class="chart" data-chart="${esc(label)}">${await renderSvg(spec)}</figure>`;
}

export async function renderReport(inputs: ReportInputs): Promise<string> {
  const parts: string[] = [];
  const r = inputs.results;
  const set = r?.modelSet ?? inputs.gradients?.modelSet;
  parts.push(`<h1>S2SNet robustness report${set ? ` — ${esc(set.name)} ${esc(set.version)}` : ''}</h1>`);
  if (r) parts.push(await evaluationSections(r));
  if (inputs.gradients) parts.push(await gradientSection(inputs.gradients));
  if (inputs.transfer) parts.push(await transferSection(inputs.transfer));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>S2SNet robustness report${set ? ` — ${esc(set.name)}` : ''}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body>
${parts.join('\n')}
</body></html>
`;
}

const settingDescription = (name: string) => SETTINGS.find((s) => s.name === name)?.description ?? name;

/** The ε the detailed tables and the ROC use: the paper's reference 0.05 when present. */
function referenceEps(r: EvalResults): number {
  return r.config.galleryEps ?? r.config.eps[Math.floor(r.config.eps.length / 2)];
}

async function evaluationSections(r: EvalResults): Promise<string> {
  const out: string[] = [];
  const c = r.config;
  const coverage = r.coverage.complete
    ? `${r.coverage.evaluated} images`
    : `<span class="bad">${r.coverage.evaluated} of ${r.data.selected} selected images (incomplete: merge the remaining shards)</span>`;
  out.push(`<p class="meta">Data: ${esc(r.data.source)}; ${r.data.limit === null ? 'every image' : `a fixed subset of ${r.data.selected} drawn with seed ${c.seed}`}; evaluated: ${coverage}.
Attacks ${c.attacks.map((a) => `<code>${esc(a)}</code>`).join(', ')}, ${c.targeted ? 'targeted (one random target per image)' : 'untargeted'}; ε ∈ {${c.eps.join(', ')}} (normalised L∞); noise layers: ${c.noise.map(esc).join(', ')}.
Parameters: <code>${esc(JSON.stringify(c.attackParams))}</code>${c.attacks.some((a) => a.endsWith('+eot')) ? `; EOT over ${c.eotSamples} noise draws` : ''}.
${Object.keys(c.attackLimits ?? {}).length ? `Run on fewer images (evenly spread over the selection): ${Object.entries(c.attackLimits).map(([a, n]) => `${esc(a)} ${n}`).join(', ')}; each entry's n says how many.` : ''}
Every adversarial image is clipped to [0, 1] and rounded to the 8-bit grid inside the ε-ball before it is evaluated.
Model files (sha256): ${Object.entries(r.modelSet.files).map(([k, v]) => `${esc(k)} <code>${esc(v.slice(0, 12))}…</code>`).join(', ')}.
Run: ${esc(r.run.startedAt)}, ${r.run.seconds.toFixed(0)} s over ${r.run.shards.length} shard(s).</p>`);

  out.push('<h2>Settings</h2>');
  out.push(table(['setting', 'gradients from → evaluated on'], c.settings.map((s) => [esc(s), esc(settingDescription(s))]), '', 2));
  out.push(`<p class="meta">With a noise layer, the evaluated model sees clip(x' + n): noise sits in front of the S2SNet (and in front of f alone for the undefended and gray-box settings, where it is the only defence). Plain attacks do not know the noise; <code>+eot</code> attacks average their gradient over noise draws.</p>`);

  out.push('<h2>Accuracy under attack</h2>');
  for (const noise of c.noise) {
    out.push(`<h3>${noise === 'none' ? 'No noise layer' : `Noise ${esc(noise)}`}</h3>`);
    out.push(mainTable(r, noise));
    out.push(await chart(accuracyChart(r, noise), `accuracy-${noise}`));
  }

  const eps = referenceEps(r);
  out.push(`<h2>All metrics at ε = ${eps}</h2>`);
  out.push(
    table(
      ['attack', 'setting', 'noise', 'n', 'clean acc.', 'adv. acc.', 'relative acc.', 'TP fooled (defence strength)', 'mean L∞', 'mean ‖δ‖₂/‖x‖₂', 'detected', 'detected (fooled TP)', 'ROC AUC'],
      r.entries
        .filter((e) => e.eps === eps)
        .map((e) => [
          esc(e.attack),
          esc(e.setting),
          esc(e.noise),
          String(e.counts.n),
          pct(e.metrics.cleanAccuracy),
          pct(e.metrics.adversarialAccuracy),
          num(e.metrics.relativeAccuracy),
          pct(e.metrics.defenceStrength),
          num(e.metrics.meanLinf, 4),
          num(e.metrics.meanL2Dissimilarity, 4),
          pct(e.metrics.detectionRate),
          pct(e.metrics.detectionRateFooled),
          num(e.detectionAuc),
        ]),
      '',
      3,
    ),
  );

  if (r.detection) {
    out.push('<h2>Detection</h2>');
    out.push(`<p class="meta">Score: ${esc(c.detection?.detector ?? '')}; an image is flagged when its score exceeds the manifest's threshold ${r.detection.threshold}. Clean false-positive rate on these images: ${r.detection.clean.map((d) => `${esc(d.noise)} ${pct(d.falsePositiveRate)}`).join(', ')}.</p>`);
    out.push(await chart(rocChart(r, eps), 'roc'));
  }

  out.push(await gallerySection(r));
  return out.join('\n');
}

/** Rows attack × setting, columns clean accuracy and the adversarial accuracy at every ε. */
function mainTable(r: EvalResults, noise: string): string {
  const rows: string[][] = [];
  for (const attack of r.config.attacks) {
    for (const setting of r.config.settings) {
      const es = r.config.eps.map((eps) => findEntry(r, { attack, setting, eps, noise }));
      if (es.every((e) => !e)) continue;
      const first = es.find(Boolean) as Entry;
      rows.push([esc(attack), esc(setting), pct(first.metrics.cleanAccuracy), ...es.map((e) => (e ? `${pct(e.metrics.adversarialAccuracy)} <small>(${num(e.metrics.relativeAccuracy, 2)})</small>` : '–'))]);
    }
  }
  return table(['attack', 'setting', 'clean', ...r.config.eps.map((e) => `ε = ${e}`)], rows, '', 2);
}

async function gallerySection(r: EvalResults): Promise<string> {
  const g = r.gallery;
  if (g.images.length === 0) return '';
  const out = [`<h2>Gallery at ε = ${r.config.galleryEps}</h2>`, `<p class="meta">Per image: the clean image, then for every setting the adversarial image, its perturbation x' − x (stretched to full contrast; the caption gives its L∞), and, where the evaluated model has one, the reconstruction s(x') or AE(x') the classifier saw. Predictions are by the evaluated model.</p>`];
  const labels = r.modelSet.labels;
  for (const attack of r.config.attacks) {
    const rows: string[][] = [];
    for (const img of g.images) {
      const items = g.items.filter((i) => i.id === img.id && i.attack === attack);
      if (items.length === 0) continue;
      const clean = fromBase64(img.pixels, g.shape);
      const cells = [`<img src="${await pngDataUri(clean)}" alt="clean image ${img.id}"><div class="cap">#${img.id}: ${esc(labels[img.label] ?? img.label)}</div>`];
      for (const setting of r.config.settings) {
        const it = items.find((i) => i.setting === setting);
        if (!it) {
          cells.push('–');
          continue;
        }
        const adv = fromBase64(it.adversarial, g.shape);
        const d = perturbation(adv, clean);
        let cell = `<img src="${await pngDataUri(adv)}" alt="adversarial, ${esc(setting)}"><img src="${await pngDataUri(d.picture)}" alt="perturbation, ${esc(setting)}">`;
        if (it.reconstruction) cell += `<img src="${await pngDataUri(fromBase64(it.reconstruction, g.shape))}" alt="reconstruction, ${esc(setting)}">`;
        const fooled = it.adversarialPrediction !== img.label;
        cell += `<div class="cap">L∞ ${d.linf.toFixed(3)}<br>${esc(labels[it.cleanPrediction] ?? it.cleanPrediction)} → <span class="${fooled ? 'bad' : ''}">${esc(labels[it.adversarialPrediction] ?? it.adversarialPrediction)}</span></div>`;
        cells.push(cell);
      }
      rows.push(cells);
    }
    if (rows.length) out.push(`<h3>${esc(attack)}</h3>`, table(['clean', ...r.config.settings.map(esc)], rows, 'gallery'));
  }
  return out.join('\n');
}

async function gradientSection(g: GradientResults): Promise<string> {
  const out = ['<h2>Gradient analysis (Table 1)</h2>'];
  out.push(`<p class="meta">Mean SSIM of input-gradient magnitude maps over ${g.data.selected} images of ${esc(g.data.source)} (${esc(g.ssimOptions.implementation)}, ${g.ssimOptions.window}×${g.ssimOptions.window} window, σ = ${g.ssimOptions.sigma}). f, f ∘ s, f ∘ AE: cross-entropy with the true label; s, AE: reconstruction MSE against the clean input. Each map is scaled to its own maximum.</p>`);
  const ssimOf = (a: GradientModel, b: GradientModel) => (a === b ? 1 : g.pairs.find((p) => (p.a === a && p.b === b) || (p.a === b && p.b === a))?.meanSsim ?? null);
  out.push(table(['', ...GRADIENT_MODELS.map((m) => esc(GRADIENT_MODEL_NAMES[m]))], GRADIENT_MODELS.map((a) => [esc(GRADIENT_MODEL_NAMES[a]), ...GRADIENT_MODELS.map((b) => num(ssimOf(a, b)))]), 'ssim'));
  out.push('<h3>True label vs a random other label</h3>');
  out.push(table(['model', 'mean SSIM'], g.labels.map((l) => [esc(GRADIENT_MODEL_NAMES[l.model]), num(l.meanSsim)])));
  if (g.examples.length) {
    out.push('<h3>Gradient magnitudes (Figure 2)</h3>');
    const [, h, w] = g.shape;
    const rows: string[][] = [];
    for (const ex of g.examples) {
      const cells = [`<img src="${await pngDataUri(fromBase64(ex.pixels, g.shape))}" alt="image ${ex.id}"><div class="cap">#${ex.id}: ${esc(g.modelSet.labels[ex.label] ?? ex.label)}</div>`];
      for (const m of GRADIENT_MODELS) cells.push(`<img src="${await pngDataUri(fromBase64(ex.maps[m], [1, h, w]))}" alt="|∇| ${esc(GRADIENT_MODEL_NAMES[m])}">`);
      rows.push(cells);
    }
    out.push(table(['image', ...GRADIENT_MODELS.map((m) => esc(GRADIENT_MODEL_NAMES[m]))], rows, 'maps'));
  }
  return out.join('\n');
}

async function transferSection(t: TransferResults): Promise<string> {
  const out = ['<h2>Transferability (Figure 8)</h2>'];
  out.push(`<p class="meta">${esc(t.attack.toUpperCase())} images crafted on each classifier (rows) and classified by each (columns), ${t.data.selected} images of ${esc(t.data.source)}. Cells: adversarial accuracy relative to the target's clean accuracy; the diagonal is white-box.</p>`);
  out.push(table(['classifier', 'version', 'clean accuracy'], t.classifiers.map((c) => [esc(c.name), esc(c.version), pct(c.cleanAccuracy)]), '', 2));
  out.push(await chart(transferChart(t), 'transfer'));
  return out.join('\n');
}
