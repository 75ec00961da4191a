import { fgsm } from '../../src/attacks/fgsm';
import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { linearClassifier, logitsOf, softmax } from './models';

/**
 * A linear classifier z = Wx + b: the cross-entropy gradient is
 * Wᵀ(softmax(z) − onehot(y)), so FGSM's step is computable by hand. With two
 * classes it is ε·sign(W_other − W_y), which is also the optimal L∞
 * direction: the smallest ε that flips the decision is margin / ‖W_y − W_other‖₁.
 */
describe('FGSM on a linear classifier', () => {
  const shape: [number, number, number] = [1, 2, 3];
  const w = [
    [0.9, -0.4, 0.3, -1.1, 0.5, 0.2],
    [-0.7, 0.8, -0.6, 0.4, -0.3, 0.9],
    [0.1, 0.6, 0.7, -0.2, -0.8, -0.5],
  ];
  const b = [0.1, -0.2, 0.05];
  const oracle = OnnxGradientOracle.fromForward('linear', linearClassifier(w, b, shape));
  afterAll(() => oracle.release());

  const x = Float32Array.from([0.5, 0.4, 0.6, 0.3, 0.7, 0.45].map((v) => Math.round(v * 255) / 255));

  it('takes the step ε·sign(Wᵀ(softmax(z) − onehot(y))), rounded to the 8-bit grid', async () => {
    const eps = 8 / 255;
    for (const y of [0, 1, 2]) {
      const adv = await fgsm().run(oracle, { x, labels: Int32Array.of(y), ids: [0] }, { eps, targeted: false, seed: 1 });
      const p = softmax(logitsOf(w, b, x));
      const grad = x.map((_, i) => w.reduce((a, row, k) => a + row[i] * (p[k] - (k === y ? 1 : 0)), 0));
      const expected = Array.from(x, (v, i) => Math.round((v + eps * Math.sign(grad[i])) * 255) / 255);
      expect(Array.from(adv)).toEqual(expected.map((v) => Math.fround(v)));
    }
  });

  it('targeted FGSM steps down the target’s cross-entropy', async () => {
    const eps = 4 / 255;
    const t = 2;
    const adv = await fgsm().run(oracle, { x, labels: Int32Array.of(t), ids: [0] }, { eps, targeted: true, seed: 1 });
    const p = softmax(logitsOf(w, b, x));
    const grad = Array.from(x, (_, i) => w.reduce((a, row, k) => a + row[i] * (p[k] - (k === t ? 1 : 0)), 0));
    expect(Array.from(adv, (v, i) => Math.round((v - x[i]) * 255))).toEqual(grad.map((g) => -4 * Math.sign(g)));
    expect(softmax(logitsOf(w, b, adv))[t]).toBeGreaterThan(p[t]);
  });

  it('flips a two-class decision exactly when ε exceeds margin / ‖W_y − W_other‖₁', async () => {
    const w2 = [w[0], w[1]];
    const b2 = [b[0], b[1]];
    const two = OnnxGradientOracle.fromForward('linear2', linearClassifier(w2, b2, shape));
    try {
      const z = logitsOf(w2, b2, x);
      const y = z[0] > z[1] ? 0 : 1;
      const margin = Math.abs(z[0] - z[1]);
      const l1 = w2[0].reduce((a, v, i) => a + Math.abs(v - w2[1][i]), 0);
      const critical = margin / l1;
      // grid steps just below and just above the critical radius (pixels stay well inside [0, 1])
      const below = Math.floor(critical * 255 - 1e-9) / 255;
      const above = Math.ceil(critical * 255 + 1e-9) / 255;
      const flips = async (eps: number) => {
        const adv = await fgsm().run(two, { x, labels: Int32Array.of(y), ids: [0] }, { eps, targeted: false, seed: 1 });
        const za = logitsOf(w2, b2, adv);
        return (za[0] > za[1] ? 0 : 1) !== y;
      };
      expect(critical).toBeGreaterThan(1 / 255);
      expect(await flips(below)).toBe(false);
      expect(await flips(above)).toBe(true);
    } finally {
      await two.release();
    }
  });
});
