import { fgsm } from '../../src/attacks/fgsm';
import { JointOracle } from '../../src/attacks/joint';
import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { linearClassifier, logitsOf, softmax } from './models';

/**
 * The detector-aware oracle on two linear classifiers, where everything is
 * computable by hand: the cross-entropy gradient of z = Wx + b is
 * Wᵀ(softmax(z) − onehot(y)), so the joint gradient is the sum of two such
 * terms, the joint loss the sum of the two losses, and FGSM's step the sign
 * of the sum.
 */
describe('JointOracle (detector-aware attack)', () => {
  const shape: [number, number, number] = [1, 2, 3];
  const wa = [
    [0.9, -0.4, 0.3, -1.1, 0.5, 0.2],
    [-0.7, 0.8, -0.6, 0.4, -0.3, 0.9],
    [0.1, 0.6, 0.7, -0.2, -0.8, -0.5],
  ];
  const ba = [0.1, -0.2, 0.05];
  const wb = [
    [-0.3, 0.5, 0.9, 0.2, -0.6, 0.1],
    [0.4, -0.9, 0.2, 0.7, 0.3, -0.4],
    [0.6, 0.1, -0.5, -0.8, 0.2, 0.7],
  ];
  const bb = [-0.1, 0.3, 0.0];
  const a = OnnxGradientOracle.fromForward('a', linearClassifier(wa, ba, shape));
  const b = OnnxGradientOracle.fromForward('b', linearClassifier(wb, bb, shape));
  const joint = new JointOracle(a, b);
  afterAll(async () => {
    await a.release();
    await b.release();
  });
  const x = Float32Array.from([0.5, 0.4, 0.6, 0.3, 0.7, 0.45].map((v) => Math.round(v * 255) / 255));
  const ceGrad = (w: number[][], bias: number[], y: number) => {
    const p = softmax(logitsOf(w, bias, x));
    return Array.from(x, (_, i) => w.reduce((s, row, k) => s + row[i] * (p[k] - (k === y ? 1 : 0)), 0));
  };
  const ce = (w: number[][], bias: number[], y: number) => -Math.log(softmax(logitsOf(w, bias, x))[y]);

  it('returns the gradient and loss of L(a) + L(b), and the logits of the judged model', async () => {
    for (const y of [0, 1, 2]) {
      const r = await joint.gradient({ x, labels: Int32Array.of(y), loss: 'cross-entropy', ids: [0], step: 0 });
      const expected = ceGrad(wa, ba, y).map((g, i) => g + ceGrad(wb, bb, y)[i]);
      Array.from(r.grad).forEach((g, i) => expect(g).toBeCloseTo(expected[i], 5));
      expect(r.loss[0]).toBeCloseTo(ce(wa, ba, y) + ce(wb, bb, y), 5);
      Array.from(r.logits).forEach((z, k) => expect(z).toBeCloseTo(logitsOf(wa, ba, x)[k], 5));
      const fwd = await joint.logits(x, [0], 0);
      expect(Array.from(fwd)).toEqual(Array.from(r.logits));
    }
  });

  it('FGSM through it steps along the sign of the summed gradient', async () => {
    const eps = 8 / 255;
    const y = 1;
    const adv = await fgsm().run(joint, { x, labels: Int32Array.of(y), ids: [0] }, { eps, targeted: false, seed: 1 });
    const g = ceGrad(wa, ba, y).map((v, i) => v + ceGrad(wb, bb, y)[i]);
    const expected = Array.from(x, (v, i) => Math.fround(Math.round((v + eps * Math.sign(g[i])) * 255) / 255));
    expect(Array.from(adv)).toEqual(expected);
    // at least one pixel where the two models disagree in sign: the joint step follows the larger one
    const ga = ceGrad(wa, ba, y);
    const gb = ceGrad(wb, bb, y);
    expect(ga.some((v, i) => Math.sign(v) !== Math.sign(gb[i]))).toBe(true);
  });

  it('refuses oracles of different geometry', () => {
    const c = OnnxGradientOracle.fromForward('c', linearClassifier(wa.map((r) => r.slice(0, 4)), ba, [1, 2, 2]));
    expect(() => new JointOracle(a, c)).toThrow(/differ in image size/);
  });
});
