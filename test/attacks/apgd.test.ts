import { apgd, apgdCheckpoints } from '../../src/attacks/apgd';
import { bim } from '../../src/attacks/bim';
import { BpdaOracle } from '../../src/attacks/bpda';
import { dlrOf } from '../../src/attacks/objective';
import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { join } from 'node:path';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { loadEvalModels } from '../../src/evaluation/models';
import { gridImages, linearClassifier, logitsOf, mlpClassifier, predictions, seeded, worstMargin } from './models';

/**
 * Known answers for APGD. On a linear classifier z = Wx + b the worst case in
 * the L∞ ball ∩ [0, 1] is closed-form: the margin z_y − z_j is smallest at
 * the corner x'_p = lo_p where (w_y − w_j)_p > 0 and hi_p elsewhere. An image
 * can be fooled iff that minimum is negative for some j. With grid images and
 * ε on the grid, the corners are on the grid, so quantisation changes nothing.
 */
const shape: [number, number, number] = [1, 6, 6];
const d = 36;

describe('APGD', () => {
  it('places its checkpoints as Croce & Hein do (N = 100: 22, 41, 57, 70, 80, 87, 93, 99)', () => {
    expect(apgdCheckpoints(100)).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
    expect(apgdCheckpoints(10)).toEqual([3, 5, 6, 7, 8, 9, 10]);
  });

  describe('on a linear classifier with two live classes', () => {
    // A third class held far below the others: DLR needs three classes, and this one never competes.
    const rnd = seeded(11);
    const w = [Array.from({ length: d }, () => rnd()), Array.from({ length: d }, () => rnd()), Array.from({ length: d }, () => 0)];
    const b = [0, 0, -100];
    const oracle = OnnxGradientOracle.fromForward('linear2', linearClassifier(w, b, shape));
    afterAll(() => oracle.release());
    const n = 12;
    const x = gridImages(n, d, 5);
    const ids = [...Array(n).keys()];
    const labels = Int32Array.from({ length: n }, (_, i) => {
      const z = logitsOf(w, b, x.subarray(i * d, (i + 1) * d));
      return z[0] > z[1] ? 0 : 1;
    });
    const eps = 3 / 255;

    it.each(['cross-entropy', 'dlr'] as const)('reaches the closed-form worst-case margin (%s)', async (loss) => {
      const adv = await apgd({ iterations: 20, loss }).run(oracle, { x, labels, ids }, { eps, targeted: false, seed: 1 });
      for (let i = 0; i < n; i++) {
        const y = labels[i];
        const other = 1 - y;
        const best = worstMargin(w, b, x.subarray(i * d, (i + 1) * d), y, other, eps);
        const z = logitsOf(w, b, adv.subarray(i * d, (i + 1) * d));
        const reached = z[y] - z[other];
        // Fooled images may stop anywhere past the boundary; the others must sit at the corner.
        if (best >= 0) expect(reached).toBeCloseTo(best, 4);
        else expect(reached).toBeLessThan(0);
      }
    });
  });

  describe('on a linear classifier with five classes', () => {
    const k = 5;
    const rnd = seeded(29);
    const w = Array.from({ length: k }, () => Array.from({ length: d }, () => rnd() * 2));
    const b = Array.from({ length: k }, () => rnd());
    const oracle = OnnxGradientOracle.fromForward('linear5', linearClassifier(w, b, shape));
    afterAll(() => oracle.release());
    const all = 80;
    const xAll = gridImages(all, d, 17);
    const eps = 4 / 255;
    // Images whose closed-form answer is not on a knife's edge.
    const keep: number[] = [];
    const truth: boolean[] = [];
    const labelsAll = predictions(Float32Array.from({ length: all * k }, (_, t) => logitsOf(w, b, xAll.subarray(Math.floor(t / k) * d, (Math.floor(t / k) + 1) * d))[t % k]), k);
    for (let i = 0; i < all; i++) {
      const xi = xAll.subarray(i * d, (i + 1) * d);
      let m = Infinity;
      for (let j = 0; j < k; j++) if (j !== labelsAll[i]) m = Math.min(m, worstMargin(w, b, xi, labelsAll[i], j, eps));
      if (Math.abs(m) > 0.02) {
        keep.push(i);
        truth.push(m < 0);
      }
    }
    const x = new Float32Array(keep.length * d);
    keep.forEach((i, j) => x.set(xAll.subarray(i * d, (i + 1) * d), j * d));
    const labels = Int32Array.from(keep, (i) => labelsAll[i]);
    const ids = keep;

    it('has both kinds of images in the sample', () => {
      expect(truth.filter(Boolean).length).toBeGreaterThan(5);
      expect(truth.filter((t) => !t).length).toBeGreaterThan(5);
    });

    it('APGD-T (targeted DLR against each other class) fools exactly the images the closed form says can be fooled', async () => {
      const adv = await apgd({ iterations: 30, targetClasses: k - 1 }).run(oracle, { x, labels, ids }, { eps, targeted: false, seed: 3 });
      const pred = predictions(await oracle.logits(adv, ids, 0), k);
      expect(pred.map((p, i) => p !== labels[i])).toEqual(truth);
      expect(Math.max(...Array.from(adv, (v, i) => Math.abs(v - x[i])))).toBeLessThanOrEqual(eps + 1e-6);
    });

    it.each(['cross-entropy', 'dlr'] as const)('untargeted APGD (%s) fools only images the closed form allows, and most of them', async (loss) => {
      // An untargeted loss may head for the wrong class, which is why the ensemble also runs APGD-T.
      const adv = await apgd({ iterations: 30, loss }).run(oracle, { x, labels, ids }, { eps, targeted: false, seed: 3 });
      const fooled = predictions(await oracle.logits(adv, ids, 0), k).map((p, i) => p !== labels[i]);
      fooled.forEach((f, i) => f && expect(truth[i]).toBe(true));
      expect(fooled.filter(Boolean).length).toBeGreaterThanOrEqual(truth.filter(Boolean).length - 2);
    });
  });

  describe('on a small MLP', () => {
    const k = 5;
    const oracle = OnnxGradientOracle.fromForward('mlp', mlpClassifier(shape, k, 32, 5));
    afterAll(() => oracle.release());
    const n = 10;
    const x = gridImages(n, d, 23);
    const ids = [...Array(n).keys()].map((i) => 500 + 3 * i);
    let labels: Int32Array;
    beforeAll(async () => {
      labels = Int32Array.from(predictions(await oracle.logits(x, ids, 0), k));
    });

    it("the oracle's DLR gradient matches finite differences", async () => {
      const r = await oracle.gradient({ x, labels, loss: 'dlr', ids, step: 0 });
      const h = 1e-3;
      for (const p of [3, 17, 40, 101, 250]) {
        const up = Float32Array.from(x);
        const down = Float32Array.from(x);
        up[p] += h;
        down[p] -= h;
        const i = Math.floor(p / d);
        const zu = await oracle.logits(up, ids, 0);
        const zd = await oracle.logits(down, ids, 0);
        const fd = (dlrOf(zu, k, i, labels[i]) - dlrOf(zd, k, i, labels[i])) / (2 * h);
        expect(r.grad[p]).toBeCloseTo(fd, 2);
        expect(r.loss[i]).toBeCloseTo(dlrOf(r.logits, k, i, labels[i]), 5);
      }
    });

    it('is deterministic for a seed and independent of the batch it runs in', async () => {
      const attack = apgd({ iterations: 8, restarts: 2, loss: 'dlr' });
      const ctx = { eps: 0.03, targeted: false, seed: 9 };
      const whole = await attack.run(oracle, { x, labels, ids }, ctx);
      const again = await attack.run(oracle, { x, labels, ids }, ctx);
      expect(Array.from(again)).toEqual(Array.from(whole));
      const a = await attack.run(oracle, { x: x.slice(0, 4 * d), labels: labels.slice(0, 4), ids: ids.slice(0, 4) }, ctx);
      const c = await attack.run(oracle, { x: x.slice(4 * d), labels: labels.slice(4), ids: ids.slice(4) }, ctx);
      expect([...a, ...c]).toEqual(Array.from(whole));
    });

    it('is at least as strong as BIM-10 at the same ε on this model', async () => {
      const ctx = { eps: 0.05, targeted: false, seed: 4 };
      const fooled = async (adv: Float32Array) => predictions(await oracle.logits(adv, ids, 0), k).filter((p, i) => p !== labels[i]).length;
      const a = await fooled(await apgd({ iterations: 20 }).run(oracle, { x, labels, ids }, ctx));
      const b = await fooled(await bim().run(oracle, { x, labels, ids }, ctx));
      expect(a).toBeGreaterThanOrEqual(b);
    });

    it('BPDA with the identity as purifier gives the plain gradient', async () => {
      const bpda = new BpdaOracle(oracle, async (u) => Float32Array.from(u), 'identity');
      const a = await bpda.gradient({ x, labels, loss: 'cross-entropy', ids, step: 0 });
      const b = await oracle.gradient({ x, labels, loss: 'cross-entropy', ids, step: 0 });
      expect(Array.from(a.grad)).toEqual(Array.from(b.grad));
    });

    it('BPDA differentiates f at s(x) and passes the gradient straight through', async () => {
      // s halves the image: the true gradient of f(s(x)) would be half of f's at s(x); BPDA keeps it whole.
      const half = async (u: Float32Array) => Float32Array.from(u, (v) => v / 2);
      const bpda = new BpdaOracle(oracle, half, 'half');
      const a = await bpda.gradient({ x, labels, loss: 'cross-entropy', ids, step: 0 });
      const b = await oracle.gradient({ x: await half(x), labels, loss: 'cross-entropy', ids, step: 0 });
      expect(Array.from(a.grad)).toEqual(Array.from(b.grad));
      expect(Array.from(await bpda.logits(x, ids, 0))).toEqual(Array.from(await oracle.logits(await half(x), ids, 0)));
    });
  });

  it('on the committed default classifier it fools at least as many images as BIM-10 after rounding to the grid', async () => {
    // Regression: returning the first fooling iterate (on the decision boundary) let rounding undo half the successes.
    const root = join(__dirname, '..', '..');
    const m = await loadEvalModels(join(root, 'models', 'fashion-mnist'), ['f']);
    const oracle = OnnxGradientOracle.fromForward('f', m.graphs.f!, { intraOpThreads: 1 });
    try {
      const ds = loadFashionMnist({ dir: join(root, 'test', 'fixtures', 'fashion-mnist-small'), split: 'test' });
      const ids = Array.from({ length: 24 }, (_, i) => i * 20);
      const b = await ds.get(ids);
      const labels = Int32Array.from(b.labels!, Number);
      const right = async (adv: Float32Array) => predictions(await oracle.logits(adv, ids, 0), 10).filter((p, i) => p === labels[i]).length;
      const ctx = { eps: 0.05, targeted: false, seed: 2 };
      const a = await right(await apgd({ iterations: 10 }).run(oracle, { x: b.images, labels, ids }, ctx));
      const r = await right(await bim().run(oracle, { x: b.images, labels, ids }, ctx));
      expect(a).toBeLessThanOrEqual(r);
    } finally {
      await oracle.release();
    }
  });
});
