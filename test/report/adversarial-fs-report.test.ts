import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel, loadModel } from '../../src/onnx/io';
import { IDENTITY_NORMALISATION, canonicalClassifier, composeDefended } from '../../src/pipeline/compose';
import { assertEncoderFrozen } from '../../src/pipeline/frozen';
import { STAGE2_RECIPE_METADATA } from '../../src/pipeline/recipes/recipe';
import { mcnemar, pairedCounts } from '../../src/evaluation/statistics';
import { ensembleMarkdown, readEnsembleResults } from '../../src/report/ensemble-summary';
import { paperSetManifest } from './paper-set';

/**
 * reports/fashion-mnist-adversarial-fs: the worst-case evaluation of the
 * adversarially trained S2SNet on 1,000 test images. The S2SNet is committed
 * beside the run; the classifier and the stage-1 autoencoder are the default
 * set's. Every graph the run recorded must be one of these bytes, and the
 * README's table must be the summary of the committed run.
 */
const root = join(__dirname, '..', '..');
const dir = join(root, 'reports', 'fashion-mnist-adversarial-fs');
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('reports/fashion-mnist-adversarial-fs', () => {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const files = manifest.files as Record<string, { sha256: string }>;
  const results = readEnsembleResults(join(dir, 'ensemble.json'));

  it('holds the S2SNet the run attacked, on the default set’s classifier and autoencoder, with the stage-1 encoder byte for byte', () => {
    const s2snetBytes = readFileSync(join(dir, 's2snet.onnx'));
    expect(sha(s2snetBytes)).toBe(files.s2snet.sha256);
    for (const key of ['classifier', 'autoencoder']) expect(sha(readFileSync(join(root, 'models', 'fashion-mnist', `${key}.onnx`)))).toBe(files[key].sha256);
    const s2snet = loadModel(join(dir, 's2snet.onnx'));
    const classifier = loadModel(join(root, 'models', 'fashion-mnist', 'classifier.onnx'));
    // defended.onnx is not committed: it is f ∘ s composed as `s2s train set` composes it.
    expect(sha(encodeModel(composeDefended(s2snet, canonicalClassifier(classifier, IDENTITY_NORMALISATION))))).toBe(files.defended.sha256);
    assertEncoderFrozen(loadModel(join(root, 'models', 'fashion-mnist', 'autoencoder.onnx')), s2snet);
    const recipe = JSON.parse(s2snet.metadata![STAGE2_RECIPE_METADATA]);
    expect(recipe.adversarial).toMatchObject({ against: 'defended', gradient: 'alternate', attack: 'pgd', iterations: 5, epsMax: 0.1, fraction: 0.5 });
    expect(recipe.steps).toBe(900);
  });

  it('the run attacked exactly those graphs, on 1,000 images with 100 APGD iterations', () => {
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(results.modelSet.files[key]).toBe(files[key].sha256);
    expect(results.images.ids).toHaveLength(1000);
    expect(results.config.params.iterations).toBe(100);
  });

  it('the report’s table is the summary of the committed run', () => {
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    const block = /<!-- ensemble:fashion-mnist-adversarial-fs -->\n([\s\S]*?)<!-- \/ensemble:fashion-mnist-adversarial-fs -->/.exec(readme);
    expect(block).not.toBeNull();
    expect(block![1]).toBe(ensembleMarkdown(results));
  });

  it('the served default set was run on the same 1,000 images; the paired comparison in the READMEs is recomputed from the per-image outcomes', () => {
    const served = readEnsembleResults(join(dir, 'served-default', 'ensemble.json'));
    const committed = paperSetManifest().files;
    for (const [key, h] of Object.entries(served.modelSet.files)) expect(h).toBe(committed[key]?.sha256);
    expect(served.images.ids).toEqual(results.images.ids);
    expect(served.config.params).toEqual(results.config.params);
    const outcome = (r: typeof results, setting: string) => [...r.combined, ...r.rows].find((x) => x.setting === setting && x.eps === 0.05)!;
    const c = pairedCounts(outcome(results, 'defended').outcomes, outcome(served, 'defended').outcomes);
    expect([outcome(results, 'defended').robust, outcome(served, 'defended').robust, c.onlyA, c.onlyB]).toEqual([540, 268, 273, 1]);
    expect(mcnemar(c.onlyA, c.onlyB)).toBeLessThan(1e-79);
    // Prose wraps: compare with runs of white space as one space.
    const text = (readFileSync(join(root, 'README.md'), 'utf8') + readFileSync(join(dir, 'README.md'), 'utf8')).replace(/\s+/g, ' ');
    expect(text).toMatch(/26\.8 % \[24\.1, 29\.6\]/);
    expect(text).toMatch(/273 images robust only under the adversarially trained S2SNet, 1 only under the paper-recipe one/);
  });
});
