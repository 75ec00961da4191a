import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensembleMarkdown, readEnsembleResults } from '../../src/report/ensemble-summary';

/**
 * The README's worst-case table is `s2s eval summary` of the committed
 * ensemble run, and that run was made on the committed default set.
 */
const root = join(__dirname, '..', '..');

describe('README worst-case table', () => {
  const results = readEnsembleResults(join(root, 'reports', 'fashion-mnist-ablation', 'baseline', 'ensemble.json'));

  it('is the summary of the committed ensemble run', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /<!-- ensemble:fashion-mnist -->\n([\s\S]*?)<!-- \/ensemble:fashion-mnist -->/.exec(readme);
    expect(block).not.toBeNull();
    expect(block![1]).toBe(ensembleMarkdown(results));
  });

  it('was run on the committed default set', () => {
    const manifest = JSON.parse(readFileSync(join(root, 'models', 'fashion-mnist', 'manifest.json'), 'utf8'));
    const files = manifest.files as Record<string, { sha256: string }>;
    // The run attacked these graphs; files added to the set later (the smoothing
    // denoiser) play no part in it, but every graph the run recorded must be the committed one.
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(results.modelSet.files[key]).toBeDefined();
    for (const [key, sha] of Object.entries(results.modelSet.files)) expect(sha).toBe(files[key]?.sha256);
  });
});
