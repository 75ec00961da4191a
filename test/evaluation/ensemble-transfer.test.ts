import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnsembleOptions, parseEnsembleSettings, runEnsemble } from '../../src/evaluation/ensemble';
import { sha256File } from '../../src/models/loader';
import { FASHION_SMALL } from './model-set';

/**
 * `transfer-ae`: examples made on f ∘ AE, judged on f ∘ s. Known answer: in a
 * copy of the default set whose autoencoder slot holds the S2SNet itself,
 * f ∘ AE is f ∘ s, so the transfer attack and the `autoencoder` setting read
 * the same gradients with the same seeds (keyed by the gradient source) and
 * are judged by the same function: their per-image outcomes must agree,
 * image for image. On the set as committed the judge is f ∘ s, not the
 * stage-1 f ∘ AE, so they must not.
 */
const committed = join(__dirname, '..', '..', 'models', 'fashion-mnist');

describe('the transfer-ae ensemble setting', () => {
  const base: EnsembleOptions = {
    models: committed,
    data: FASHION_SMALL,
    settings: parseEnsembleSettings('whitebox,autoencoder,transfer-ae'),
    members: ['apgd-ce', 'apgd-t'],
    params: { iterations: 4, restarts: 1, targetClasses: 2 },
    eps: [0.1],
    limit: 24,
    seed: 5,
    batchSize: 10,
    threads: 1,
    progress: false,
    provider: 'cpu',
  };
  const rowOf = (r: Awaited<ReturnType<typeof runEnsemble>>, setting: string) => r.rows.find((x) => x.setting === setting)!;
  const outcomes = (r: Awaited<ReturnType<typeof runEnsemble>>, setting: string) => rowOf(r, setting).outcomes;

  it('with s itself in the autoencoder slot it is the autoencoder setting, image for image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2s-transfer-'));
    const manifest = JSON.parse(readFileSync(join(committed, 'manifest.json'), 'utf8'));
    for (const key of Object.keys(manifest.files)) copyFileSync(join(committed, manifest.files[key].path), join(dir, manifest.files[key].path));
    copyFileSync(join(committed, manifest.files.s2snet.path), join(dir, manifest.files.autoencoder.path));
    manifest.files.autoencoder.sha256 = await sha256File(join(dir, manifest.files.autoencoder.path));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const r = await runEnsemble({ ...base, models: dir });
    expect(rowOf(r, 'transfer-ae')).toMatchObject({ source: 'fae', target: 'fs' });
    expect(outcomes(r, 'transfer-ae')).toEqual(outcomes(r, 'autoencoder'));
    expect(outcomes(r, 'transfer-ae')).toHaveLength(24);
    // and the attack did something, or the equality would say nothing
    expect(rowOf(r, 'transfer-ae').robust).toBeLessThan(rowOf(r, 'transfer-ae').cleanCorrect);
  }, 600_000);

  it('with the stage-1 autoencoder as the surrogate it is judged on f ∘ s: clean counts are white-box\'s, outcomes not the autoencoder setting\'s', async () => {
    const r = await runEnsemble(base);
    expect(rowOf(r, 'transfer-ae').cleanCorrect).toBe(rowOf(r, 'whitebox').cleanCorrect);
    expect(outcomes(r, 'transfer-ae')).not.toEqual(outcomes(r, 'autoencoder'));
  }, 600_000);
});
