import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { arrayDataset } from '../../src/training/dataset';
import { loadModel } from '../../src/onnx/io';
import { composeDefended } from '../../src/pipeline/compose';
import { recipeByName } from '../../src/pipeline/recipes/catalogue';
import { ADVERSARIAL_LOGITS, pairedDataset, pairedModel } from '../../src/pipeline/recipes/pairs';
import { checkRecipe } from '../../src/pipeline/recipes/recipe';
import { createSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';

/** TRADES in stage 2: rows [x′; x] stacked on channels, unstacked by the model into f(s(x)) and f(s(x′)). */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');

describe('trades pairs', () => {
  it('the paired model gives f(s(x)) as logits and f(s(x′)) as logits_adv, the same as f ∘ s on each alone', async () => {
    const defended = composeDefended(loadModel(join(models, 'autoencoder.onnx')), loadModel(join(models, 'classifier.onnx')));
    const paired = pairedModel(defended, 1, 10);
    expect(paired.inputs.find((v) => v.name === 'input')!.shape).toEqual([expect.anything(), 2, 28, 28]);
    expect(paired.outputs.map((o) => o.name)).toEqual(['logits', ADVERSARIAL_LOGITS]);
    const rng = new Rng(3);
    const n = 3;
    const clean = Float32Array.from({ length: n * 784 }, () => rng.uniform());
    const adv = Float32Array.from(clean, (v) => Math.min(1, Math.max(0, v + (rng.uniform() - 0.5) * 0.4)));
    const rows = new Float32Array(n * 2 * 784);
    for (let i = 0; i < n; i++) {
      rows.set(adv.subarray(i * 784, (i + 1) * 784), 2 * i * 784);
      rows.set(clean.subarray(i * 784, (i + 1) * 784), (2 * i + 1) * 784);
    }
    const ps = await createSession(paired, { intraOpThreads: 1 });
    const ds = await createSession(defended, { intraOpThreads: 1 });
    try {
      const out = await ps.run({ input: new ort.Tensor('float32', rows, [n, 2, 28, 28]) });
      const alone = async (x: Float32Array) => (await ds.run({ input: new ort.Tensor('float32', x, [n, 1, 28, 28]) }, ['logits'])).logits.data as Float32Array;
      const [lc, la] = [await alone(clean), await alone(adv)];
      const close = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).every((v, i) => Math.abs(v - b[i]) < 1e-4);
      expect(out.logits.dims).toEqual([n, 10]);
      expect(close(out.logits.data as Float32Array, lc)).toBe(true);
      expect(close(out[ADVERSARIAL_LOGITS].data as Float32Array, la)).toBe(true);
      expect(close(lc, la)).toBe(false);
    } finally {
      await ps.release();
      await ds.release();
    }
  });

  it('paired rows are [x′; x] in the order of the indices, with the clean labels; without examples, (x, x)', async () => {
    const images = Float32Array.from({ length: 4 * 4 }, (_, i) => i);
    const labels = BigInt64Array.from([0n, 1n, 2n, 3n]);
    const clean = arrayDataset(images, [1, 2, 2], labels);
    const adversarial = arrayDataset(Float32Array.from(images, (v) => -v), [1, 2, 2], labels);
    const p = pairedDataset(clean, adversarial);
    expect(p.shape).toEqual([2, 2, 2]);
    const b = await p.get([2, 0]);
    expect(Array.from(b.images)).toEqual([-8, -9, -10, -11, 8, 9, 10, 11, -0, -1, -2, -3, 0, 1, 2, 3]);
    expect(Array.from(b.labels!)).toEqual([2n, 0n]);
    const same = await pairedDataset(clean).get([1]);
    expect(Array.from(same.images)).toEqual([4, 5, 6, 7, 4, 5, 6, 7]);
  });

  it('a trades recipe pairs every image, takes no noise, needs β; β belongs to trades alone', () => {
    const r = recipeByName('adversarial-trades', { beta: 2 });
    expect(r.beta).toBe(2);
    expect(r.name).toBe('adversarial-trades(β 2)');
    expect(r.description).toMatch(/overridden: β = 2$/);
    expect(() => recipeByName('adversarial-trades', { adversarial: { fraction: 0.5 } })).toThrow(/adversarial fraction must be 1/);
    expect(() => recipeByName('adversarial-fs', { beta: 2 })).toThrow(/--trades-beta is for a trades recipe/);
    expect(() => checkRecipe({ ...r, beta: 0 })).toThrow(/needs β > 0/);
    expect(() => checkRecipe({ ...r, noise: { kind: 'gaussian', sigma: 0.1 } })).toThrow(/takes no input noise/);
    expect(() => checkRecipe({ ...r, adversarial: undefined })).toThrow(/needs adversarial inputs/);
    expect(() => checkRecipe({ name: 'x', description: '', loss: 'ce', beta: 1 })).toThrow(/β is the trades loss's/);
  });
});
