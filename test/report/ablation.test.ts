import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENSEMBLE_SCHEMA, EnsembleResults, EnsembleRow } from '../../src/evaluation/ensemble';
import { mcnemar } from '../../src/evaluation/statistics';
import { writeAblationReadme } from '../../src/report/ablation-folder';

/** The ablation table from hand-made ensemble documents: paired counts follow the image ids, not the order. */
function row(setting: string, eps: number, outcomes: string): EnsembleRow {
  const robust = [...outcomes].filter((c) => c === '1').length;
  return { setting, source: '', target: 'fs', eps, n: outcomes.length, cleanCorrect: outcomes.length, robust, accuracy: robust / outcomes.length, ci: [0, 1], relative: robust / outcomes.length, members: [], outcomes };
}

function doc(ids: number[], rows: EnsembleRow[], combined: EnsembleRow[]): EnsembleResults {
  return {
    schema: ENSEMBLE_SCHEMA,
    version: 1,
    modelSet: { name: 'x', version: '0', files: {} },
    data: { source: 'test', size: 100, selected: ids.length, limit: ids.length },
    config: { settings: [], members: ['apgd-ce'], params: { iterations: 1, restarts: 1, targetClasses: 0, rho: 0.75, alpha: 0.75 }, eps: [0.05], noise: 'none', eotSamples: null, seed: 0 },
    images: { ids },
    clean: [],
    rows,
    combined,
    comparisons: [],
    run: { tool: 'test', startedAt: '', seconds: 0, cpuSeconds: 0, gradientPasses: 0, batchSize: 1 },
  };
}

describe('ablation report', () => {
  it('pairs each recipe with f ∘ AE image by image and tests with McNemar', () => {
    const dir = mkdtempSync(join(tmpdir(), 'abl-'));
    mkdirSync(join(dir, 'baseline'));
    mkdirSync(join(dir, 'r1'));
    // Baseline over ids 1..12: AE robust on the first 4.
    const ids = Array.from({ length: 12 }, (_, i) => i + 1);
    writeFileSync(join(dir, 'baseline', 'ensemble.json'), JSON.stringify(doc(ids, [row('autoencoder', 0.05, '111100000000')], [row('autoencoder-all', 0.05, '111100000000')])));
    // The recipe's run lists the same images in reverse order: robust on ids 9..12 and on id 1.
    const rev = [...ids].reverse();
    const outcomes = rev.map((id) => (id >= 9 || id === 1 ? '1' : '0')).join('');
    writeFileSync(join(dir, 'r1', 'ensemble.json'), JSON.stringify(doc(rev, [row('whitebox', 0.05, outcomes)], [row('defended', 0.05, outcomes)])));
    writeFileSync(join(dir, 'r1', 'manifest.json'), JSON.stringify({ metrics: { top1: { s2snet: 0.9 }, training: { s2snet: { description: 'test recipe' } } } }));
    writeFileSync(join(dir, 'r1', 'detector.json'), JSON.stringify({ entries: [{ attack: 'bim', setting: 'undefended', eps: 0.05, noise: 'none', detectionAuc: 0.93 }] }));
    writeFileSync(join(dir, 'README.md'), 'intro\n<!-- ablation:table -->\nold\n<!-- /ablation:table -->\nend\n');
    writeAblationReadme(dir);
    const md = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(md.startsWith('intro\n<!-- ablation:table -->\n')).toBe(true);
    expect(md).not.toMatch(/\nold\n/);
    expect(md.endsWith('<!-- /ablation:table -->\nend\n')).toBe(true);
    // recipe only: ids 9..12 (4); AE only: ids 2..4 (3)
    expect(md).toContain(`| \`r1\` | 12 | 4 / 3 | ${mcnemar(4, 3).toFixed(4)} |`);
    expect(md).toContain('| `r1` | 12 | 90.0 % | 41.7 [');
    expect(md).toContain('0.930');
    expect(md).toContain('- `r1`: test recipe\n');
    // A model that differs beyond its recipe says how, in the recipe's line.
    writeFileSync(join(dir, 'r1', 'variant.txt'), 'decoder without pooling indices\n');
    writeAblationReadme(dir);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain('- `r1`: test recipe — decoder without pooling indices\n');
  });
});
