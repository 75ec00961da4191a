import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { servedBase } from '../../src/certify/certifying-model';
import { loadModelSet } from '../../src/models/loader';
import { loadModel } from '../../src/onnx/io';
import { differingInitializers } from '../../src/pipeline/frozen';
import { ADVERSARIAL_FS_STAGE2, DEFAULT_STAGE2, Recipe, TRADES_STAGE2, buildDefaultSets, namedRecipe, stage2Record, stageIds } from '../../src/pipeline/default-set';
import { trainedRecord } from '../../src/pipeline/train-s2snet';
import { STAGE2_RECIPE_METADATA } from '../../src/pipeline/recipes/recipe';

/**
 * The default-set recipe's plumbing on the committed subset with a tiny
 * recipe (one step per stage): partial runs with `only`, the error for a
 * missing earlier stage, resume reusing finished stages, and both kinds of
 * set (own S2SNet, plain-AE baseline).
 */
const data = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');

const recipe: Recipe = {
  version: '0.0.1-test',
  holdout: 100,
  classifiers: [
    {
      arch: 'mlp',
      set: 'fm-mlp',
      defence: 's2snet',
      description: 'test set with an S2SNet and a smoothing denoiser',
      settings: { epochs: 1, batchSize: 8, lr: 1e-3, seed: 1 },
      smoothing: { sigma: 0.5, pretrainEpochs: 1, trainEncoder: true, settings: { epochs: 1, batchSize: 8, lr: 1e-3, seed: 5 } },
    },
    { arch: 'vgg-small', set: 'fm-vgg', defence: 'autoencoder', description: 'test set behind the plain AE', settings: { epochs: 1, batchSize: 8, lr: 1e-3, seed: 2 } },
  ],
  autoencoder: { arch: 'segnet-small', settings: { epochs: 1, batchSize: 8, lr: 1e-3, seed: 3 } },
  s2snet: { loss: 'ce', settings: { epochs: 1, batchSize: 8, lr: 1e-3, seed: 4 } },
};

describe('default-set recipe (tiny recipe, committed subset)', () => {
  const root = mkdtempSync(join(tmpdir(), 's2s-default-'));
  const out = join(root, 'models');
  const work = join(root, 'work');
  const lines: string[] = [];
  const base = { out, work, data, recipe, smoke: { steps: 1, images: 60 }, intraOpThreads: 1, log: (l: string) => lines.push(l) };

  it('names its stages in dependency order', () => {
    expect(stageIds(recipe)).toEqual(['autoencoder', 'classifier:mlp', 'classifier:vgg-small', 's2snet:mlp', 'smoothing:mlp', 'sets']);
  });

  it('runs a subset of stages, and refuses a stage whose inputs are missing', async () => {
    await buildDefaultSets({ ...base, only: ['autoencoder', 'classifier:mlp', 'classifier:vgg-small'] });
    await expect(buildDefaultSets({ ...base, only: ['sets'] })).rejects.toThrow(/stage s2snet:mlp has not been run/);
    await expect(buildDefaultSets({ ...base, only: ['classifier:resnet50'] })).rejects.toThrow(/unknown stage classifier:resnet50/);
  });

  it('finishes with resume and writes both kinds of set', async () => {
    const r = await buildDefaultSets({ ...base, resume: true });
    expect(r.stages.map((s) => s.stage)).toEqual(['s2snet:mlp', 'smoothing:mlp']);
    expect(lines.some((l) => /classifier:mlp: finished earlier/.test(l))).toBe(true);

    const own = await loadModelSet(join(out, 'fm-mlp'));
    expect(own.manifest.defence.chain).toEqual([{ stage: 'noise' }, { stage: 's2snet' }]);
    expect(Object.keys(own.paths).sort()).toEqual(['autoencoder', 'classifier', 'defended', 's2snet', 'smoothing']);
    // The smoothing denoiser is recorded with its σ and recipe, and certification smooths f ∘ d.
    expect(own.manifest.smoothing).toMatchObject({
      sigma: 0.5,
      denoiser: 'smoothing',
      clip: true,
      training: { recipe: 'stability(gaussian:0.5)', noise: 'gaussian:0.5', seed: 5, pretraining: { recipe: 'denoise(gaussian:0.5)', epochs: 1 }, trained: 'encoder.* and decoder.* (variant: encoder not frozen); classifier frozen' },
    });
    // The recipe's variant trains the encoder of the denoiser only: the S2SNet keeps the autoencoder's.
    const ae = loadModel(own.paths.autoencoder!);
    expect(differingInitializers(ae, loadModel(own.paths.smoothing!), 'encoder.').length).toBeGreaterThan(0);
    expect(differingInitializers(ae, loadModel(own.paths.s2snet!), 'encoder.')).toEqual([]);
    expect(servedBase(own.manifest)).toBe('f∘d');
    expect(own.manifest.files.smoothing!.sha256).not.toBe(own.manifest.files.s2snet!.sha256);
    const baseline = await loadModelSet(join(out, 'fm-vgg'));
    expect(baseline.manifest.defence.chain).toEqual([{ stage: 'noise' }, { stage: 'autoencoder' }]);
    expect(Object.keys(baseline.paths).sort()).toEqual(['autoencoder', 'classifier']);
    expect(baseline.manifest.smoothing).toBeUndefined();
    expect((baseline.manifest.metrics as { detection: { score: string } }).detection.score).toMatch(/AE\(x\)/);
    // Both sets share the one stage-1 autoencoder.
    expect(own.manifest.files.autoencoder!.sha256).toBe(baseline.manifest.files.autoencoder!.sha256);
  });

  it("a set's own stage 2 overrides the recipe's: a named recipe with adversarial overrides, recorded in the manifest and the S2SNet", async () => {
    const own: Recipe = {
      ...recipe,
      classifiers: [{ ...recipe.classifiers[0], smoothing: undefined, s2snet: { loss: 'ce', recipe: 'adversarial-fs', adversarial: { fraction: 0.25, iterations: 1 }, settings: { epochs: 1, batchSize: 8, lr: 1e-3, seed: 9 } } }],
    };
    const dir = join(root, 'override');
    const r = await buildDefaultSets({ ...base, recipe: own, out: join(dir, 'models'), work: join(dir, 'work'), only: ['autoencoder', 'classifier:mlp', 's2snet:mlp', 'sets'] });
    expect(r.stages.map((s) => s.stage)).toEqual(['autoencoder', 'classifier:mlp', 's2snet:mlp']);
    const set = await loadModelSet(join(dir, 'models', 'fm-mlp'));
    const name = 'adversarial-fs(pgd-1:0-0.1 vs defended/alternate, 0.25)';
    expect((set.manifest.metrics as { training: { s2snet: unknown } }).training.s2snet).toMatchObject({ recipe: name, loss: 'ce', adversarial: { fraction: 0.25, iterations: 1, gradient: 'alternate' }, seed: 9 });
    expect(JSON.parse(loadModel(set.paths.s2snet!).metadata![STAGE2_RECIPE_METADATA])).toMatchObject({ recipe: name, seed: 9 });
    expect(differingInitializers(loadModel(set.paths.autoencoder!), loadModel(set.paths.s2snet!), 'encoder.')).toEqual([]);
  });

  it("a plan with trainEncoder trains the S2SNet's encoder too (the 1.5.0 variant) and records it in the manifest and the S2SNet", async () => {
    const own: Recipe = {
      ...recipe,
      classifiers: [{ ...recipe.classifiers[0], smoothing: undefined, s2snet: { loss: 'ce', recipe: 'adversarial-trades', beta: 1, trainEncoder: true, settings: { epochs: 1, batchSize: 8, lr: 1e-3, seed: 9 } } }],
    };
    const dir = join(root, 'encoder');
    await buildDefaultSets({ ...base, recipe: own, out: join(dir, 'models'), work: join(dir, 'work'), only: ['autoencoder', 'classifier:mlp', 's2snet:mlp', 'sets'] });
    const set = await loadModelSet(join(dir, 'models', 'fm-mlp'));
    const variant = 'encoder.* and decoder.* (variant: encoder not frozen); classifier frozen';
    expect((set.manifest.metrics as { training: { s2snet: unknown } }).training.s2snet).toMatchObject({ recipe: 'adversarial-trades(β 1)', trained: variant, seed: 9 });
    expect(JSON.parse(loadModel(set.paths.s2snet!).metadata![STAGE2_RECIPE_METADATA])).toMatchObject({ trained: variant });
    expect(differingInitializers(loadModel(set.paths.autoencoder!), loadModel(set.paths.s2snet!), 'encoder.').length).toBeGreaterThan(0);
  });

  it('a second resumed run retrains nothing and reproduces the sets byte for byte', async () => {
    const before = readFileSync(join(out, 'fm-mlp', 'manifest.json'), 'utf8');
    const r = await buildDefaultSets({ ...base, resume: true });
    expect(r.stages).toEqual([]);
    expect(readFileSync(join(out, 'fm-mlp', 'manifest.json'), 'utf8')).toBe(before);
  });
});

describe('the default stage-2 plans', () => {
  it("1.5.0's plan is 1.4.0's TRADES plan with the encoder trained; both record the settings `s2s train s2snet` records, so either command trains the same graph", () => {
    const r = namedRecipe(DEFAULT_STAGE2)!;
    expect([r.name, r.loss, r.beta]).toEqual(['adversarial-trades(β 1)', 'trades', 1]);
    expect(DEFAULT_STAGE2).toEqual({ ...TRADES_STAGE2, trainEncoder: true });
    // the CLI's settings carry the optimizer; the graph's recorded JSON must match key for key
    expect(Object.keys(DEFAULT_STAGE2.settings)).toEqual(['epochs', 'steps', 'batchSize', 'lr', 'weightDecay', 'optimizer', 'seed']);
    expect(stage2Record(DEFAULT_STAGE2)).toMatchObject({ recipe: 'adversarial-trades(β 1)', loss: 'trades', beta: 1, steps: 3600, batchSize: 32, trained: trainedRecord(true) });
    expect(stage2Record(TRADES_STAGE2)).toMatchObject({ steps: 3600, trained: trainedRecord(false) });
  });

  it("1.3.0's plan is kept as a named variant", () => {
    expect(namedRecipe(ADVERSARIAL_FS_STAGE2)!.name).toBe('adversarial-fs(pgd-5:0-0.1 vs defended/alternate, 0.2)');
    expect(stage2Record(ADVERSARIAL_FS_STAGE2)).toMatchObject({ loss: 'ce', steps: 1800, batchSize: 64 });
  });
});
