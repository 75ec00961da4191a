import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import { EnsembleOptions, EnsembleResults, parseEnsembleSettings, runEnsemble } from '../../src/evaluation/ensemble';
import { ensembleMarkdown } from '../../src/report/ensemble-summary';
import { FASHION_SMALL } from './model-set';

/**
 * The ensemble on the committed default model set (24 images of the
 * committed Fashion-MNIST test subset, short APGD runs): an image it counts
 * as robust survived every member, so the ensemble is at least as strong as
 * each member alone — in fact its robust set is exactly the intersection of
 * theirs, because every attack is seeded per image and does not depend on
 * which images share its batch.
 */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');

describe('the attack ensemble (committed default set)', () => {
  const base: EnsembleOptions = {
    models,
    data: FASHION_SMALL,
    settings: parseEnsembleSettings('whitebox,whitebox-bpda,autoencoder'),
    members: ['apgd-ce', 'apgd-dlr', 'apgd-t'],
    params: { iterations: 4, restarts: 1, targetClasses: 2 },
    eps: [0.05],
    limit: 24,
    seed: 3,
    batchSize: 10,
    threads: 1,
    progress: false,
    provider: 'cpu',
  };
  let together: EnsembleResults;
  const alone = new Map<string, EnsembleResults>();
  beforeAll(async () => {
    together = await runEnsemble(base);
    for (const m of base.members) alone.set(m, await runEnsemble({ ...base, members: [m] }));
  }, 600_000);

  it('is at least as strong as each member: its robust images are the intersection of theirs', () => {
    for (const row of together.rows) {
      const singles = [...alone.values()].map((r) => r.rows.find((x) => x.setting === row.setting && x.eps === row.eps)!);
      for (const s of singles) expect(row.accuracy).toBeLessThanOrEqual(s.accuracy);
      const intersection = Array.from(row.outcomes, (_, i) => (singles.every((s) => s.outcomes[i] === '1') ? '1' : '0')).join('');
      expect(row.outcomes).toBe(intersection);
    }
  });

  it('counts members honestly: each attacks only what is left, and the tally adds up', () => {
    for (const row of together.rows) {
      let left = row.cleanCorrect;
      for (const m of row.members) {
        expect(m.attacked).toBe(left);
        left -= m.broken;
        expect(m.accuracyAfter).toBeCloseTo(left / row.n, 12);
      }
      expect(row.robust).toBe(left);
      expect(row.ci[0]).toBeLessThanOrEqual(row.accuracy);
      expect(row.ci[1]).toBeGreaterThanOrEqual(row.accuracy);
    }
    // The combined row: robust under white-box and BPDA both.
    const d = together.combined.find((r) => r.setting === 'defended')!;
    const wb = together.rows.find((r) => r.setting === 'whitebox')!;
    const bp = together.rows.find((r) => r.setting === 'whitebox-bpda')!;
    expect(d.outcomes).toBe(Array.from(wb.outcomes, (c, i) => (c === '1' && bp.outcomes[i] === '1' ? '1' : '0')).join(''));
    expect(together.comparisons.some((c) => c.a === 'defended' && c.b === 'autoencoder-all')).toBe(false);
    expect(together.comparisons.some((c) => c.a === 'whitebox' && c.b === 'autoencoder')).toBe(true);
  });

  it('the summary leads with the worst case', () => {
    const md = ensembleMarkdown(together);
    const lines = md.split('\n');
    expect(lines.findIndex((l) => l.includes('**defended**'))).toBeLessThan(lines.findIndex((l) => l.startsWith('| whitebox ')));
    expect(md).toMatch(/McNemar/);
  });

  it('s2s eval --attacks ensemble writes results.json and summary.md; bad members exit 2 with one line', async () => {
    const out = mkdtempSync(join(tmpdir(), 's2s-ens-'));
    const errs: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (errs.push(String(c)), true));
    try {
      const ok = await main(['node', 's2s', 'eval', '--models', models, '--data', FASHION_SMALL, '--attacks', 'ensemble', '--ensemble-settings', 'undefended', '--members', 'apgd-ce', '--apgd-iterations', '2', '--limit', '6', '--eps', '0.1', '--threads', '1', '--no-progress', '--out', out]);
      expect(ok).toBe(0);
      const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as EnsembleResults;
      expect(r.rows).toHaveLength(1);
      expect(r.config.params.iterations).toBe(2);
      expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/undefended/);
      const bad = await main(['node', 's2s', 'eval', '--models', models, '--data', FASHION_SMALL, '--attacks', 'ensemble', '--members', 'apgd-xx', '--out', out]);
      expect(bad).toBe(2);
      expect(errs.join('')).toMatch(/unknown ensemble member 'apgd-xx'/);
    } finally {
      spy.mockRestore();
    }
  });
});
