import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnsembleResults } from '../../src/evaluation/ensemble';
import { mcnemar, pairedCounts } from '../../src/evaluation/statistics';
import { ablationMarkdown } from '../../src/report/ablation';
import { readAblation } from '../../src/report/ablation-folder';
import { ROOT, servedSetManifest } from './paper-set';

/**
 * reports/fashion-mnist-ablation/screen-1000: two stage-2 variants paired
 * against the served S2SNet on the same 1,000 images. The table block is the
 * folder's summary, the served run is a run of the graphs being served, and
 * every paired count, p-value, gray-box ratio and clean figure the prose
 * states is recomputed from the committed runs.
 */
const dir = join(ROOT, 'reports', 'fashion-mnist-ablation', 'screen-1000');
const row = (r: EnsembleResults, setting: string, eps: number) => {
  const x = [...r.combined, ...r.rows].find((y) => y.setting === setting && y.eps === eps);
  if (!x) throw new Error(`no ${setting} row at ε = ${eps}`);
  return x;
};

describe('reports/fashion-mnist-ablation/screen-1000', () => {
  const { baseline, entries } = readAblation(dir);
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  const byName = Object.fromEntries(entries.map((e) => [e.recipe, e]));

  it('the table block is the summary of the committed runs, all on the same 1,000 images with the same attack', () => {
    const block = /<!-- ablation:table -->\n([\s\S]*?)<!-- \/ablation:table -->/.exec(readme)?.[1];
    expect(block).toBe(ablationMarkdown(entries, baseline));
    for (const r of [baseline, ...entries.map((e) => e.ensemble)]) {
      expect(r.images.ids).toEqual(baseline.images.ids);
      expect(r.images.ids).toHaveLength(1000);
      expect(r.config.params).toMatchObject({ iterations: 30, restarts: 1, targetClasses: 2 });
      expect([...r.config.eps].sort()).toEqual([0.05, 0.1]);
    }
    const served = servedSetManifest();
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(byName.served.ensemble.modelSet.files[key]).toBe(served.files[key].sha256);
    for (const key of ['classifier', 'autoencoder']) expect(byName['eps0.15'].ensemble.modelSet.files[key]).toBe(served.files[key].sha256);
  });

  it('the paired counts and p-values against the served S2SNet are the per-image outcomes', () => {
    const text = readme.replace(/\s+/g, ' ');
    const settings: Array<[string, string]> = [
      ['defended', 'worst case'],
      ['whitebox-bpda', 'BPDA'],
      ['graybox', 'gray-box'],
    ];
    for (const variant of ['eps0.15', 'pgd10']) {
      for (const eps of [0.05, 0.1]) {
        const cells = settings.map(([setting]) => {
          const c = pairedCounts(row(byName[variant].ensemble, setting, eps).outcomes, row(byName.served.ensemble, setting, eps).outcomes);
          const p = mcnemar(c.onlyA, c.onlyB);
          // as the table writes them: two decimals from 0.1, two significant digits down to 0.001, then 1.8e-6 style
          const shown = p >= 0.1 ? String(Number(p.toFixed(2))) : p >= 0.001 ? String(Number(p.toPrecision(2))) : p.toExponential(1);
          return `${c.onlyA} / ${c.onlyB}, p = ${shown}`;
        });
        expect(text).toContain(`| \`${variant}\` | ${eps} | ${cells.join(' | ')} |`);
      }
    }
  });

  it('the gray-box ratios and clean figures the prose quotes', () => {
    const rel = (name: string, eps: number) => row(byName[name].ensemble, 'graybox', eps).relative!.toFixed(3);
    expect([rel('served', 0.05), rel('eps0.15', 0.05), rel('served', 0.1), rel('eps0.15', 0.1)]).toEqual(['0.828', '0.847', '0.504', '0.562']);
    const text = readme.replace(/\s+/g, ' ');
    expect(text).toContain('0.828 → 0.847 at ε = 0.05, 0.504 → 0.562 at ε = 0.1');
    const clean = (name: string) => byName[name].cleanTop1!;
    expect(((clean('served') - clean('eps0.15')) * 100).toFixed(2)).toBe('0.39');
    expect(((clean('served') - clean('pgd10')) * 100).toFixed(2)).toBe('0.43');
    expect(row(byName.served.ensemble, 'defended', 0.05).robust).toBe(589);
    expect(text).toContain('the served set keeps 58.9 % here');
  });
});
