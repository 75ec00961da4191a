import { join } from 'node:path';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { loadModel } from '../../src/onnx/io';
import { differingInitializers } from '../../src/pipeline/frozen';
import { RECIPES, RECIPE_NAMES, recipeByName } from '../../src/pipeline/recipes/catalogue';
import { withInputNoise } from '../../src/pipeline/recipes/noise-graph';
import { STAGE2_RECIPE_METADATA, checkRecipe, recipeRecord } from '../../src/pipeline/recipes/recipe';
import { trainS2SNet } from '../../src/pipeline/train-s2snet';
import { createSession } from '../../src/runtime/session';
import * as ort from 'onnxruntime-node';

/**
 * Every stage-2 recipe trains a few steps on the committed Fashion-MNIST
 * subset with the committed classifier and stage-1 autoencoder: it changes
 * the decoder, keeps the encoder byte for byte, and records itself in the
 * S2SNet's metadata.
 */
const data = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');

describe('stage-2 recipes', () => {
  const classifier = loadModel(join(models, 'classifier.onnx'));
  const autoencoder = loadModel(join(models, 'autoencoder.onnx'));
  const train = loadFashionMnist({ dir: data, split: 'train' });

  it.each(RECIPE_NAMES)('%s: trains the decoder only, the encoder stays byte-identical', async (name) => {
    const recipe = recipeByName(name);
    const r = await trainS2SNet({
      label: name,
      autoencoder,
      classifier,
      loss: 'ce',
      recipe,
      train,
      settings: { epochs: 1, steps: 2, batchSize: 8, lr: 1e-3, seed: 1 },
      dataTag: 'fixture',
      intraOpThreads: 1,
      log: () => undefined,
    });
    expect(differingInitializers(autoencoder, r.s2snet, 'encoder.')).toEqual([]);
    expect(differingInitializers(autoencoder, r.s2snet, 'decoder.').length).toBeGreaterThan(0);
    // The S2SNet is the autoencoder's graph: no noise layer or adversarial machinery left in it.
    expect(r.s2snet.nodes.length).toBe(autoencoder.nodes.length);
    const recorded = JSON.parse(r.s2snet.metadata![STAGE2_RECIPE_METADATA]);
    expect(recorded.recipe).toBe(name);
    expect(recorded.loss).toBe(recipe.loss);
    expect(recorded.steps).toBe(2);
    expect(r.train.losses.every(Number.isFinite)).toBe(true);
  });

  it('the train-encoder variant trains the encoder too, says so, and leaves f and the graph as they were', async () => {
    const r = await trainS2SNet({
      label: 'stability+encoder',
      autoencoder,
      classifier,
      loss: 'kl',
      recipe: recipeByName('stability'),
      trainEncoder: true,
      train,
      settings: { epochs: 1, steps: 2, batchSize: 8, lr: 1e-3, seed: 1 },
      dataTag: 'fixture',
      intraOpThreads: 1,
      log: () => undefined,
    });
    expect(differingInitializers(autoencoder, r.s2snet, 'encoder.').length).toBeGreaterThan(0);
    expect(differingInitializers(autoencoder, r.s2snet, 'decoder.').length).toBeGreaterThan(0);
    expect(r.trainedParameters.some((n) => n.startsWith('encoder.'))).toBe(true);
    expect(r.s2snet.nodes.length).toBe(autoencoder.nodes.length);
    expect(JSON.parse(r.s2snet.metadata![STAGE2_RECIPE_METADATA]).trained).toMatch(/^encoder\.\* and decoder\.\* \(variant: encoder not frozen\)/);
  });

  it('every recipe has a description; noise overrides rename the recipe', () => {
    for (const r of RECIPES) expect(r.description.length).toBeGreaterThan(10);
    const r = recipeByName('noise-ce', { sigma: 0.05, noiseKind: 'uniform' });
    expect(r.noise).toEqual({ kind: 'uniform', sigma: 0.05 });
    expect(r.name).toBe('noise-ce(uniform:0.05)');
    // The record must not keep the catalogue's σ = 0.1 as if it were what was drawn.
    expect(r.description).toMatch(/overridden: input noise uniform of scale 0\.05$/);
    expect(() => recipeByName('nope')).toThrow(/unknown stage-2 recipe/);
  });

  it('--adv-ascent kl renames the recipe, says so in its description and record; the default stays CE ascent', () => {
    const r = recipeByName('adversarial-trades', { adversarial: { ascent: 'kl' }, beta: 1 });
    expect(r.name).toBe('adversarial-trades(pgd-5-kl:0-0.1 vs defended/alternate, 1)(β 1)');
    expect(r.description).toMatch(/ascending KL\(f\(s\(x\)\) ‖ f\(s\(x′\)\)\) instead of the label’s CE/);
    expect(recipeRecord(r).adversarial).toMatchObject({ ascent: 'kl', attack: 'pgd' });
    expect(recipeByName('adversarial-trades').adversarial?.ascent).toBeUndefined();
    expect(() => checkRecipe({ ...r, adversarial: { ...r.adversarial!, ascent: 'mse' as 'kl' } })).toThrow(/ascent must be ce or kl, got 'mse'/);
  });

  it.each([
    ['gaussian', 0.1],
    ['uniform', 0.1],
    ['sign', 0.1],
  ] as const)('the %s noise layer draws fresh noise of the right size every run, clipped to [0, 1]', async (kind, sigma) => {
    const g = withInputNoise(autoencoder, { kind, sigma }, 7);
    // Look at the noisy input itself: expose the clip's output.
    const clip = g.nodes.find((n) => n.opType === 'Clip' && n.name.startsWith('input_noise'))!;
    g.outputs = [{ name: clip.outputs[0], dataType: 1, shape: ['N', 1, 28, 28] }];
    const s = await createSession(g, { intraOpThreads: 1 });
    try {
      const x = new Float32Array(784).fill(0.5);
      const feed = () => ({ input: new ort.Tensor('float32', x, [1, 1, 28, 28]) });
      const a = Float32Array.from((await s.run(feed(), [clip.outputs[0]]))[clip.outputs[0]].data as Float32Array);
      const b = Float32Array.from((await s.run(feed(), [clip.outputs[0]]))[clip.outputs[0]].data as Float32Array);
      expect(Array.from(a)).not.toEqual(Array.from(b));
      const d = Array.from(a, (v) => v - 0.5);
      const rms = Math.sqrt(d.reduce((acc, v) => acc + v * v, 0) / d.length);
      const expected = kind === 'gaussian' ? sigma : kind === 'uniform' ? sigma / Math.sqrt(3) : sigma;
      expect(rms).toBeGreaterThan(expected * 0.85);
      expect(rms).toBeLessThan(expected * 1.15);
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThanOrEqual(1);
    } finally {
      await s.release();
    }
  });
});
