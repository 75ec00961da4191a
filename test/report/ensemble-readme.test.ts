import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAblationReadme } from '../../src/report/ablation-folder';
import { ensembleMarkdown, readEnsembleResults } from '../../src/report/ensemble-summary';
import { paperSetManifest } from './paper-set';

/**
 * The README's worst-case table is `s2s eval summary` of the committed
 * ensemble run, and that run was made on the committed default set. The
 * committed runs predate the detector's table (results version 1): they
 * still read, and the ablation README made from them is unchanged.
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

  it('was run on the default set of 1.2.0 (the paper-recipe S2SNet, kept in reports/fashion-mnist/models)', () => {
    const manifest = paperSetManifest();
    const files = manifest.files as Record<string, { sha256: string }>;
    // The run attacked these graphs; files added to the set later (the smoothing
    // denoiser) play no part in it, but every graph the run recorded must be the committed one.
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(results.modelSet.files[key]).toBeDefined();
    for (const [key, sha] of Object.entries(results.modelSet.files)) expect(sha).toBe(files[key]?.sha256);
  });

  it('reads every committed run; version-1 summaries have no detector table, version-2 ones do, and the ablation README regenerates byte for byte', () => {
    const dir = join(root, 'reports', 'fashion-mnist-ablation');
    const runs = readdirSync(dir).filter((d) => existsSync(join(dir, d, 'ensemble.json')));
    expect(runs.length).toBeGreaterThanOrEqual(5);
    const versions = new Set<number>();
    for (const d of runs) {
      const r = readEnsembleResults(join(dir, d, 'ensemble.json'));
      versions.add(r.version);
      if (r.version === 1) expect(ensembleMarkdown(r)).not.toMatch(/robust or detected/);
      else expect(ensembleMarkdown(r)).toMatch(/robust or detected/);
    }
    expect(versions.has(1)).toBe(true);
    const copy = mkdtempSync(join(tmpdir(), 's2s-ablation-'));
    cpSync(dir, copy, { recursive: true });
    writeAblationReadme(copy);
    expect(readFileSync(join(copy, 'README.md'), 'utf8')).toBe(readFileSync(join(dir, 'README.md'), 'utf8'));
  });

  it('refuses a results version newer than it reads', () => {
    const path = join(mkdtempSync(join(tmpdir(), 's2s-ens-')), 'ensemble.json');
    writeFileSync(path, JSON.stringify({ ...results, version: 99 }));
    expect(() => readEnsembleResults(path)).toThrow(/version 99/);
  });
});
