import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { pgd } from '../../src/attacks/pgd';
import { gridImages, mlpClassifier, predictions } from './models';

describe('PGD', () => {
  const shape: [number, number, number] = [1, 6, 6];
  const k = 5;
  const oracle = OnnxGradientOracle.fromForward('mlp', mlpClassifier(shape, k, 32, 5));
  afterAll(() => oracle.release());
  const n = 10;
  const x = gridImages(n, 36, 23);
  const ids = [...Array(n).keys()].map((i) => 1000 + 7 * i);
  let labels: Int32Array;
  beforeAll(async () => {
    labels = Int32Array.from(predictions(await oracle.logits(x, ids, 0), k));
  });
  const ctx = { eps: 0.03, targeted: false, seed: 42 };

  it('is identical for a fixed seed, different for another, and stays in the ε-ball', async () => {
    const a = await pgd({ iterations: 5 }).run(oracle, { x, labels, ids }, ctx);
    const b = await pgd({ iterations: 5 }).run(oracle, { x, labels, ids }, ctx);
    const c = await pgd({ iterations: 5 }).run(oracle, { x, labels, ids }, { ...ctx, seed: 43 });
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(Array.from(c)).not.toEqual(Array.from(a));
    expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - x[i])))).toBeLessThanOrEqual(ctx.eps + 1e-6);
  });

  it('does not depend on the batch size or on which images share a batch', async () => {
    const attack = pgd({ iterations: 4, restarts: 3 });
    const whole = await attack.run(oracle, { x, labels, ids }, ctx);
    const pieces: Float32Array[] = [];
    for (const [s, e] of [[0, 3], [3, 4], [4, 10]]) {
      pieces.push(await attack.run(oracle, { x: x.slice(s * 36, e * 36), labels: labels.slice(s, e), ids: ids.slice(s, e) }, ctx));
    }
    const joined = new Float32Array(whole.length);
    let o = 0;
    for (const p of pieces) {
      joined.set(p, o);
      o += p.length;
    }
    expect(Array.from(joined)).toEqual(Array.from(whole));
  });

  it('restarts only add successes: images fooled by one start stay fooled with more', async () => {
    const fooled = async (restarts: number) => {
      const adv = await pgd({ iterations: 3, restarts }).run(oracle, { x, labels, ids }, { ...ctx, eps: 0.02 });
      return predictions(await oracle.logits(adv, ids, 0), k).map((p, i) => p !== labels[i]);
    };
    const one = await fooled(1);
    const four = await fooled(4);
    one.forEach((f, i) => f && expect(four[i]).toBe(true));
    expect(four.filter(Boolean).length).toBeGreaterThanOrEqual(one.filter(Boolean).length);
  });

  it('the margin loss works as well as cross-entropy here', async () => {
    const adv = await pgd({ iterations: 10, loss: 'margin' }).run(oracle, { x, labels, ids }, { ...ctx, eps: 0.1 });
    const p = predictions(await oracle.logits(adv, ids, 0), k);
    expect(p.filter((v, i) => v !== labels[i]).length).toBeGreaterThanOrEqual(n * 0.7);
  });
});
