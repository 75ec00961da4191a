import { EvalResults, findEntry } from '../evaluation/results';

/**
 * A results.json as Markdown tables, for READMEs and pull requests: the
 * accuracy-under-attack table of the report (no noise), the noise layers at
 * one ε, and the detector. Numbers only come from the document's counts, so
 * a README block made from it can be checked against the committed results.
 */
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${(100 * v).toFixed(1)} %`);

const find = (r: EvalResults, attack: string, setting: string, eps: number, noise: string) => findEntry(r, { attack, setting, eps, noise });

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function markdownTable(header: string[], rows: string[][]): string[] {
  return [row(header), row(header.map(() => '---')), ...rows.map(row)];
}

export interface SummaryOptions {
  /** ε of the noise table (default: the report's gallery ε) */
  eps?: number;
}

export function summaryMarkdown(r: EvalResults, o: SummaryOptions = {}): string {
  const c = r.config;
  const eps = o.eps ?? c.galleryEps ?? Math.max(...c.eps);
  const limits = Object.entries(c.attackLimits ?? {});
  const out: string[] = [];
  out.push(
    `Model set \`${r.modelSet.name}\` ${r.modelSet.version}; ${r.coverage.evaluated} of ${r.data.size} test images (seeded subset, seed ${c.seed})` +
      (limits.length ? `; ${limits.map(([a, n]) => `${a} on ${n}`).join(', ')} of them` : '') +
      `. Top-1 accuracy on the adversarial images (clean accuracy of the evaluated model in the first column); no noise layer.`,
    '',
  );
  const rows: string[][] = [];
  for (const attack of c.attacks) {
    for (const setting of c.settings) {
      const es = c.eps.map((e) => find(r, attack, setting, e, 'none'));
      const first = es.find(Boolean);
      if (!first) continue;
      rows.push([attack, setting, pct(first.metrics.cleanAccuracy), ...es.map((e) => pct(e?.metrics.adversarialAccuracy))]);
    }
  }
  out.push(...markdownTable(['attack', 'setting', 'clean', ...c.eps.map((e) => `ε = ${e}`)], rows));

  const noises = c.noise.filter((n) => n !== 'none');
  if (noises.length && c.eps.includes(eps)) {
    out.push('', `With a noise layer in front of the S2SNet (added after the attack), ε = ${eps}: top-1 accuracy on the adversarial images.`, '');
    const nrows: string[][] = [];
    for (const attack of c.attacks) {
      for (const setting of c.settings) {
        const es = ['none', ...noises].map((n) => find(r, attack, setting, eps, n));
        if (es.every((e) => !e)) continue;
        nrows.push([attack, setting, ...es.map((e) => pct(e?.metrics.adversarialAccuracy))]);
      }
    }
    out.push(...markdownTable(['attack', 'setting', 'no noise', ...noises], nrows));
  }

  if (r.detection && c.eps.includes(eps)) {
    const fpr = r.detection.clean.find((d) => d.noise === 'none')?.falsePositiveRate;
    out.push('', `Detector (KL between f(x) and f(s(x)), threshold ${Number(r.detection.threshold.toPrecision(4))}, ${pct(fpr)} of the clean images flagged), ε = ${eps}, no noise: share of the images the attack fooled that the detector flags.`, '');
    const drows: string[][] = [];
    for (const attack of c.attacks) {
      for (const setting of c.settings) {
        const e = find(r, attack, setting, eps, 'none');
        if (!e) continue;
        drows.push([attack, setting, pct(e.metrics.defenceStrength), pct(e.metrics.detectionRateFooled), e.detectionAuc === null ? '–' : e.detectionAuc.toFixed(3)]);
      }
    }
    out.push(...markdownTable(['attack', 'setting', 'fooled (of clean-correct)', 'fooled and flagged', 'detection AUC'], drows));
  }
  return `${out.join('\n')}\n`;
}
