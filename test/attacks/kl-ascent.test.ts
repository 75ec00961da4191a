import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { ascentSign, attackObjective, klToReferenceWithWeights, softmaxRows } from '../../src/attacks/objective';
import { Dataset } from '../../src/data/dataset';
import { adversarialDataset } from '../../src/pipeline/recipes/adversarial-data';
import { frozenClassifierSource } from '../../src/pipeline/recipes/adversarial-source';
import { gridImages, linearClassifier, logitsOf, mlpClassifier, predictions, softmax } from './models';

/**
 * The kl objective, KL(p ‖ softmax(z)) from a reference p: TRADES' inner
 * maximisation for stage-2 training examples. Its value and ∂/∂z by hand,
 * the oracle's input gradient against finite differences, and PGD on it
 * against the closed-form answer of a two-class linear model.
 */
describe('the kl objective', () => {
  it('has known values: zero with its own softmax as reference, log 2 from a one-hot to a uniform prediction', () => {
    const z = Float32Array.from([0.3, -1.2, 2.0]);
    const w = new Float32Array(3);
    expect(klToReferenceWithWeights(z, 3, 0, softmaxRows(z, 3), w).value).toBeCloseTo(0, 6);
    for (const v of w) expect(v).toBeCloseTo(0, 6);
    const flat = Float32Array.from([0, 0]);
    const w2 = new Float32Array(2);
    expect(klToReferenceWithWeights(flat, 2, 0, Float32Array.from([1, 0]), w2).value).toBeCloseTo(Math.log(2), 6);
    expect(Array.from(w2)).toEqual([-0.5, 0.5]);
  });

  it('∂KL/∂z matches finite differences, row by row', () => {
    const k = 4;
    const z = Float32Array.from([1.5, -0.2, 0.7, 0.1, -2, 0.4, 0.3, 3]);
    const ref = Float32Array.from([...softmax([0, 1, -1, 0.5]), 0, 0, 0.25, 0.75]);
    const w = new Float32Array(z.length);
    for (let row = 0; row < 2; row++) klToReferenceWithWeights(z, k, row, ref, w);
    const h = 1e-3;
    for (let p = 0; p < z.length; p++) {
      const row = Math.floor(p / k);
      const up = new Float64Array(z);
      const down = new Float64Array(z);
      up[p] += h;
      down[p] -= h;
      const fd = (klToReferenceWithWeights(Float32Array.from(up), k, row, ref).value - klToReferenceWithWeights(Float32Array.from(down), k, row, ref).value) / (2 * h);
      expect(w[p]).toBeCloseTo(fd, 3);
    }
  });

  it('is ascended, untargeted only, and is not an evaluation objective', () => {
    expect(ascentSign('kl', false)).toBe(1);
    expect(() => ascentSign('kl', true)).toThrow(/no target/);
    expect(() => attackObjective('kl', false, new Float32Array(3), 3, 0, 0)).toThrow(/reference distribution/);
  });
});

describe("the oracle's kl gradient", () => {
  const shape: [number, number, number] = [1, 6, 6];
  const d = 36;
  const k = 5;
  const oracle = OnnxGradientOracle.fromForward('mlp', mlpClassifier(shape, k, 32, 5));
  afterAll(() => oracle.release());
  const n = 6;
  const x = gridImages(n, d, 41);
  const ids = [...Array(n).keys()];

  it('matches finite differences of KL(p ‖ softmax(f(x))), p the prediction at a nearby image', async () => {
    const labels = Int32Array.from(predictions(await oracle.logits(x, ids, 0), k));
    // The reference: the prediction at a shifted image, so the KL and its gradient are not zero.
    const ref = softmaxRows(await oracle.logits(x.map((v, i) => Math.min(1, v + 0.2 * Math.sin(i))), ids, 0), k);
    const r = await oracle.gradient({ x, labels, loss: 'kl', reference: ref, ids, step: 0 });
    const h = 1e-3;
    let checked = 0;
    for (const p of [2, 19, 44, 90, 131, 200]) {
      const i = Math.floor(p / d);
      const up = Float32Array.from(x);
      const down = Float32Array.from(x);
      up[p] += h;
      down[p] -= h;
      const fd = (klToReferenceWithWeights(await oracle.logits(up), k, i, ref).value - klToReferenceWithWeights(await oracle.logits(down), k, i, ref).value) / (2 * h);
      expect(r.grad[p]).toBeCloseTo(fd, 2);
      expect(r.loss[i]).toBeCloseTo(klToReferenceWithWeights(r.logits, k, i, ref).value, 5);
      if (Math.abs(fd) > 1e-3) checked++;
    }
    // The points compared carry gradient: the check is not of zeros against zeros.
    expect(checked).toBeGreaterThan(2);
  });

  it('refuses a request without a reference of n × K values', async () => {
    const labels = new Int32Array(n);
    await expect(oracle.gradient({ x, labels, loss: 'kl', ids, step: 0 })).rejects.toThrow(/reference distribution of 6×5 values, got none/);
    await expect(oracle.gradient({ x, labels, loss: 'kl', reference: new Float32Array(5), ids, step: 0 })).rejects.toThrow(/got 5/);
  });
});

describe('PGD with KL ascent (stage-2 training examples) on a two-class linear model', () => {
  // z_1 − z_0 = Δw·x + Δb. With the clean prediction as reference the KL grows
  // with |Δz′ − Δz| whichever way Δz′ moves, so each sign step keeps the
  // direction in which the random start already moved it: after 5 steps of
  // 2.5·ε/5 every example sits at x ± ε·sign(Δw) (clipped to [0, 1]), the sign
  // that of the start's shift. CE ascent of the label goes to one corner only.
  const shape: [number, number, number] = [1, 4, 4];
  const d = 16;
  const w = [Array.from({ length: d }, (_, p) => Math.sin(p + 1)), Array.from({ length: d }, (_, p) => Math.cos(3 * p))];
  const b = [0.1, -0.1];
  const dw = w[1].map((v, p) => v - w[0][p]);
  const n = 24;
  const x = gridImages(n, d, 7);
  const labels = BigInt64Array.from({ length: n }, (_, i) => {
    const z = logitsOf(w, b, x.subarray(i * d, (i + 1) * d));
    return z[1] > z[0] ? 1n : 0n;
  });
  const base: Dataset = { size: n, shape: [...shape], get: (idx) => ({ images: Float32Array.from(idx.flatMap((i) => Array.from(x.subarray(i * d, (i + 1) * d)))), labels: BigInt64Array.from(idx.map((i) => labels[i])) }) };
  const eps = 0.1;
  const corner = (i: number, s: number) => Array.from({ length: d }, (_, p) => Math.min(1, Math.max(0, x[i * d + p] + s * eps * Math.sign(dw[p]))));

  async function examples(ascent: 'ce' | 'kl'): Promise<Float32Array> {
    const data = adversarialDataset(base, frozenClassifierSource(linearClassifier(w, b, shape)), { against: 'f', attack: 'pgd', epsMin: eps, epsMax: eps, iterations: 5, fraction: 1, ascent }, 3);
    try {
      return (await data.get([...Array(n).keys()])).images;
    } finally {
      await data.release();
    }
  }

  it('puts every example at one of the two corners, in both directions across images; CE ascent only at the corner away from the label', async () => {
    const kl = await examples('kl');
    const ce = await examples('ce');
    const side = (adv: Float32Array, i: number) => {
      const got = Array.from(adv.subarray(i * d, (i + 1) * d));
      const near = (c: number[]) => got.every((v, p) => Math.abs(v - c[p]) < 1e-5);
      return near(corner(i, 1)) ? 1 : near(corner(i, -1)) ? -1 : 0;
    };
    const klSides = Array.from({ length: n }, (_, i) => side(kl, i));
    expect(klSides).not.toContain(0);
    expect(klSides).toContain(1);
    expect(klSides).toContain(-1);
    // CE ascent lowers the label's logit: towards class 0 (−Δw) for label 1, towards class 1 for label 0.
    for (let i = 0; i < n; i++) expect(side(ce, i)).toBe(labels[i] === 1n ? -1 : 1);
    // So the two ascents differ on the images where KL's start moved towards the label.
    expect(klSides.some((s, i) => s !== side(ce, i))).toBe(true);
  });
});
