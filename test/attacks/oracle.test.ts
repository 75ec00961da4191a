import { EotOracle } from '../../src/attacks/eot';
import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { linearClassifier, logitsOf, softmax } from './models';

describe('gradient oracles', () => {
  const shape: [number, number, number] = [1, 1, 4];
  const w = [
    [1.0, -0.5, 0.25, 0.5],
    [-0.25, 0.75, -1.0, 0.5],
    [0.5, 0.5, 0.5, -0.75],
  ];
  const b = [0, 0.1, -0.1];
  const oracle = OnnxGradientOracle.fromForward('linear', linearClassifier(w, b, shape));
  afterAll(() => oracle.release());
  const x = Float32Array.from([0.2, 0.4, 0.6, 0.8, 0.9, 0.1, 0.3, 0.5]);
  const labels = Int32Array.of(0, 2);

  it('cross-entropy: loss, logits and Wᵀ(softmax − onehot) per image', async () => {
    const r = await oracle.gradient({ x, labels, loss: 'cross-entropy', ids: [0, 1], step: 0 });
    for (let i = 0; i < 2; i++) {
      const xi = x.subarray(i * 4, (i + 1) * 4);
      const z = logitsOf(w, b, xi);
      const p = softmax(z);
      expect(Array.from(r.logits.subarray(i * 3, i * 3 + 3))).toEqual(z.map((v) => expect.closeTo(v, 5)));
      expect(r.loss[i]).toBeCloseTo(-Math.log(p[labels[i]]), 5);
      const g = [0, 1, 2, 3].map((j) => w.reduce((a, row, k) => a + row[j] * (p[k] - (k === labels[i] ? 1 : 0)), 0));
      expect(Array.from(r.grad.subarray(i * 4, i * 4 + 4))).toEqual(g.map((v) => expect.closeTo(v, 5)));
    }
  });

  it('margin: z_y − max_{i≠y} z_i and W_y − W_{arg max other}', async () => {
    const r = await oracle.gradient({ x, labels, loss: 'margin', ids: [0, 1], step: 0 });
    for (let i = 0; i < 2; i++) {
      const z = logitsOf(w, b, x.subarray(i * 4, (i + 1) * 4));
      const y = labels[i];
      const others = z.map((v, k) => (k === y ? -Infinity : v));
      const j = others.indexOf(Math.max(...others));
      expect(r.loss[i]).toBeCloseTo(z[y] - z[j], 5);
      expect(Array.from(r.grad.subarray(i * 4, i * 4 + 4))).toEqual(w[y].map((v, p) => expect.closeTo(v - w[j][p], 5)));
    }
  });

  it('EOT: σ-free noise reproduces the base gradient; real noise averages draws reproducibly', async () => {
    const base = await oracle.gradient({ x, labels, loss: 'cross-entropy', ids: [0, 1], step: 0 });
    const tiny = new EotOracle(oracle, { kind: 'uniform', sigma: 1e-9 }, 3, 7);
    const same = await tiny.gradient({ x, labels, loss: 'cross-entropy', ids: [0, 1], step: 0 });
    expect(Array.from(same.grad)).toEqual(Array.from(base.grad).map((v) => expect.closeTo(v, 5)));

    const eot = new EotOracle(oracle, { kind: 'gaussian', sigma: 0.3 }, 4, 7);
    const a = await eot.gradient({ x, labels, loss: 'cross-entropy', ids: [0, 1], step: 5 });
    const again = await eot.gradient({ x, labels, loss: 'cross-entropy', ids: [0, 1], step: 5 });
    const other = await eot.gradient({ x, labels, loss: 'cross-entropy', ids: [0, 1], step: 6 });
    expect(Array.from(again.grad)).toEqual(Array.from(a.grad));
    expect(Array.from(other.grad)).not.toEqual(Array.from(a.grad));
    // Image 1 alone draws the same noise as in the pair: the stream is per image.
    const single = await eot.gradient({ x: x.slice(4), labels: labels.slice(1), loss: 'cross-entropy', ids: [1], step: 5 });
    expect(Array.from(single.grad)).toEqual(Array.from(a.grad.subarray(4)));
  });

  it('EOT: pixels the noise layer clips get no gradient', async () => {
    // σ far above 1 with sign noise: every draw leaves [0, 1], so clip binds everywhere.
    const eot = new EotOracle(oracle, { kind: 'sign', sigma: 1 }, 2, 1);
    const r = await eot.gradient({ x, labels, loss: 'cross-entropy', ids: [0, 1], step: 0 });
    expect(Array.from(r.grad).every((v) => v === 0)).toBe(true);
  });
});
