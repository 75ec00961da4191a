import { EnsembleResults, EnsembleRow } from '../evaluation/ensemble';
import { mcnemar, pairedCounts } from '../evaluation/statistics';

/**
 * The stage-2 ablation as Markdown: one row per recipe, worst-case robust
 * accuracy per setting and ε (95 % Wilson intervals), clean top-1 of f ∘ s,
 * detector AUC, training cost, and a paired McNemar test of each recipe's
 * f ∘ s against f ∘ AE on the same images. All recipes share the stage-1
 * autoencoder, so f ∘ AE is measured once (in `baseline`).
 */
export interface AblationEntry {
  recipe: string;
  description: string;
  ensemble: EnsembleResults;
  /** top-1 of f ∘ s on the full test set (the set's manifest) */
  cleanTop1: number | null;
  /** detection AUC of the KL detector against BIM-10 at ε = 0.05, undefended setting */
  detectorAuc: number | null;
  /** stage-2 training: steps × batch (of images, or of clean/adversarial pairs for trades), wall seconds, CPU seconds */
  training: { steps: number; batch: number; pairs?: boolean; seconds: number; cpuSeconds: number } | null;
}

const pct = (v: number) => `${(100 * v).toFixed(1)}`;

function cell(r: EnsembleRow | undefined): string {
  if (!r) return '–';
  return `${pct(r.accuracy)} [${pct(r.ci[0])}, ${pct(r.ci[1])}]`;
}

function find(e: EnsembleResults, setting: string, eps: number): EnsembleRow | undefined {
  return [...e.combined, ...e.rows].find((r) => r.setting === setting && r.eps === eps);
}

/**
 * Both outcome strings restricted to the images the two runs share, in the
 * baseline's order: a recipe run on fewer images (a prefix of the same seeded
 * selection) is compared on those images only.
 */
function paired(row: EnsembleRow, ids: number[], base: EnsembleRow, baseIds: number[]): { a: string; b: string } {
  const at = new Map(ids.map((id, i) => [id, i]));
  let a = '';
  let b = '';
  baseIds.forEach((id, j) => {
    const i = at.get(id);
    if (i === undefined) return;
    a += row.outcomes[i];
    b += base.outcomes[j];
  });
  return { a, b };
}

export function ablationMarkdown(entries: AblationEntry[], baseline: EnsembleResults): string {
  const eps = baseline.config.eps;
  const out: string[] = [];
  const settings: [string, string][] = [
    ['defended', 'worst case on f ∘ s (white-box ∪ BPDA)'],
    ['whitebox', 'white-box (through s)'],
    ['whitebox-bpda', "white-box′ (BPDA)"],
    ['graybox', 'gray-box (judged on f)'],
  ];
  const header = ['recipe', 'images', 'clean f ∘ s (10k)', ...settings.flatMap(([, label]) => eps.map((e) => `${label}, ε = ${e}`))];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  out.push(line(header), line(header.map(() => '---')));
  const ae = eps.map((e) => find(baseline, 'autoencoder-all', e));
  out.push(line(['plain AE (f ∘ AE, stage 1)', String(baseline.data.selected), '–', ...settings.flatMap(([s]) => eps.map((e, i) => (s === 'defended' ? cell(ae[i]) : s === 'whitebox' ? cell(find(baseline, 'autoencoder', e)) : s === 'whitebox-bpda' ? cell(find(baseline, 'autoencoder-bpda', e)) : '–')))]));
  for (const x of entries) {
    out.push(line([`\`${x.recipe}\``, String(x.ensemble.data.selected), x.cleanTop1 === null ? '–' : `${pct(x.cleanTop1)} %`, ...settings.flatMap(([s]) => eps.map((e) => cell(find(x.ensemble, s, e))))]));
  }
  out.push('');
  out.push('Paired against the plain autoencoder on the same images (exact McNemar; "AE only" = images robust under f ∘ AE but not under the recipe\'s f ∘ s), worst case over white-box and BPDA:', '');
  const cmpHeader = ['recipe', 'images', ...eps.flatMap((e) => [`ε = ${e}: recipe only / AE only`, `p`])];
  out.push(line(cmpHeader), line(cmpHeader.map(() => '---')));
  for (const x of entries) {
    const cells = eps.flatMap((e, i) => {
      const a = find(x.ensemble, 'defended', e);
      const b = ae[i];
      if (!a || !b) return ['–', '–'];
      const p2 = paired(a, x.ensemble.images.ids, b, baseline.images.ids);
      if (p2.a.length === 0) return ['–', '–'];
      const c = pairedCounts(p2.a, p2.b);
      const p = mcnemar(c.onlyA, c.onlyB);
      return [`${c.onlyA} / ${c.onlyB}`, p < 1e-4 ? p.toExponential(1) : p.toFixed(4)];
    });
    const shared = x.ensemble.images.ids.filter((id) => baseline.images.ids.includes(id)).length;
    out.push(line([`\`${x.recipe}\``, String(shared), ...cells]));
  }
  out.push('');
  out.push('Gray-box relative accuracy (robust on f / clean on f), detector and training cost:', '');
  const h3 = ['recipe', ...eps.map((e) => `gray-box relative, ε = ${e}`), 'detector AUC (BIM-10, ε = 0.05, undefended)', 'stage-2 training'];
  out.push(line(h3), line(h3.map(() => '---')));
  for (const x of entries) {
    const rel = eps.map((e) => {
      const r = find(x.ensemble, 'graybox', e);
      return r?.relative === null || r?.relative === undefined ? '–' : r.relative.toFixed(3);
    });
    const t = x.training;
    out.push(line([`\`${x.recipe}\``, ...rel, x.detectorAuc === null ? '–' : x.detectorAuc.toFixed(3), t ? `${t.steps} × ${t.batch} ${t.pairs ? 'image pairs' : 'images'}, ${t.seconds.toFixed(0)} s wall, ${t.cpuSeconds.toFixed(0)} CPU s` : '–']));
  }
  out.push('');
  out.push('Recipes:', '');
  for (const x of entries) out.push(`- \`${x.recipe}\`: ${x.description}`);
  out.push('');
  return out.join('\n');
}

