import { cw } from '../../src/attacks/cw';
import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { gridImages, linearClassifier, logitsOf, mlpClassifier, predictions } from './models';

describe('Carlini-Wagner L2', () => {
  it('finds the minimal L2 perturbation of a two-class linear classifier (margin + κ) / ‖W_y − W_o‖₂', async () => {
    const shape: [number, number, number] = [1, 4, 4];
    const w0 = Array.from({ length: 16 }, (_, i) => Math.sin(i + 1));
    const w1 = Array.from({ length: 16 }, (_, i) => Math.cos(2 * i + 1) * 0.7);
    const x = Float32Array.from({ length: 16 }, (_, i) => Math.round((0.35 + 0.3 * Math.abs(Math.sin(3 * i))) * 255) / 255);
    const z0 = logitsOf([w0, w1], [0, 0], x);
    // Bias so that class 0 wins by a margin of 0.4.
    const b = [0.4 - (z0[0] - z0[1]), 0];
    const oracle = OnnxGradientOracle.fromForward('linear2', linearClassifier([w0, w1], b, shape));
    try {
      const kappa = 0.2;
      const diff = w0.map((v, i) => v - w1[i]);
      const optimal = (0.4 + kappa) / Math.sqrt(diff.reduce((a, v) => a + v * v, 0));
      const adv = await cw({ kappa, iterations: 200, learningRate: 0.01, searchSteps: 6, initialConst: 1 }).run(
        oracle,
        { x, labels: Int32Array.of(0), ids: [0] },
        { eps: 1, targeted: false, seed: 0 },
      );
      const z = logitsOf([w0, w1], b, adv);
      expect(z[1]).toBeGreaterThan(z[0]);
      const l2 = Math.sqrt(Array.from(adv).reduce((a, v, i) => a + (v - x[i]) ** 2, 0));
      // the grid adds at most half a level per pixel: √16 · 0.5/255
      expect(l2).toBeGreaterThan(optimal * 0.9);
      expect(l2).toBeLessThan(optimal * 1.1 + (4 * 0.5) / 255);
    } finally {
      await oracle.release();
    }
  });

  it('respects the ε box, reports on the grid, and does not depend on the batch split', async () => {
    const shape: [number, number, number] = [1, 5, 5];
    const k = 4;
    const oracle = OnnxGradientOracle.fromForward('mlp', mlpClassifier(shape, k, 24, 9));
    try {
      const n = 6;
      const x = gridImages(n, 25, 5);
      const ids = [...Array(n).keys()];
      const labels = Int32Array.from(predictions(await oracle.logits(x, ids, 0), k));
      const attack = cw({ iterations: 30, searchSteps: 2 });
      const ctx = { eps: 0.05, targeted: false, seed: 0 };
      const all = await attack.run(oracle, { x, labels, ids }, ctx);
      expect(Math.max(...Array.from(all, (v, i) => Math.abs(v - x[i])))).toBeLessThanOrEqual(0.05 + 1e-6);
      expect(Math.max(...Array.from(all, (v) => Math.abs(v * 255 - Math.round(v * 255))))).toBeLessThan(1e-4);
      const first = await attack.run(oracle, { x: x.slice(0, 50), labels: labels.slice(0, 2), ids: ids.slice(0, 2) }, ctx);
      const rest = await attack.run(oracle, { x: x.slice(50), labels: labels.slice(2), ids: ids.slice(2) }, ctx);
      expect([...first, ...rest]).toEqual(Array.from(all));
      const fooled = predictions(await oracle.logits(all, ids, 0), k).filter((p, i) => p !== labels[i]).length;
      expect(fooled).toBeGreaterThan(0);
    } finally {
      await oracle.release();
    }
  });
});
