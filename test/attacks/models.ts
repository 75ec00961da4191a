import { GraphBuilder } from '../../src/onnx/builder';
import { attr } from '../../src/onnx/graph';
import { Graph } from '../../src/onnx/graph';
import { floatTensor } from '../../src/onnx/tensor';

/**
 * Small classifiers whose gradients are known in closed form, for attack
 * tests with answers computed by hand.
 */

/** logits = W·flatten(x) + b, W [K, C·H·W] row-major. */
export function linearClassifier(w: number[][], b: number[], shape: [number, number, number]): Graph {
  const g = new GraphBuilder('linear', { opset: 17 });
  const x = g.input('input', ['N', ...shape]);
  const flat = g.flatten(x);
  const weight = g.constant(floatTensor([w.length, w[0].length], w.flat()), 'W');
  const bias = g.constant(floatTensor([b.length], b), 'b');
  g.output(g.op('Gemm', [flat, weight, bias], { transB: attr.int(1) }), 'logits');
  return g.build();
}

/** A random two-layer MLP (Gemm, ReLU): nonlinear, so attacks have work to do. */
export function mlpClassifier(shape: [number, number, number], classes: number, hidden = 32, seed = 3): Graph {
  const g = new GraphBuilder('mlp', { seed });
  const x = g.input('input', ['N', ...shape]);
  const h = g.relu(g.linear(g.flatten(x), { out: hidden }));
  g.output(g.linear(h, { out: classes, init: 'glorot' }), 'logits');
  return g.build();
}

/** softmax(z) in float64. */
export function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** A seeded LCG drawing uniformly from [−0.5, 0.5): random weights that a test can reproduce. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

/**
 * The smallest margin z_y − z_j of a linear classifier over the L∞ ball of
 * radius ε around x, clipped to [0, 1]: closed form, at the corner x'_p = lo_p
 * where (w_y − w_j)_p > 0 and hi_p elsewhere.
 */
export function worstMargin(w: number[][], b: number[], x: ArrayLike<number>, y: number, j: number, eps: number): number {
  let m = b[y] - b[j];
  for (let p = 0; p < x.length; p++) {
    const dw = w[y][p] - w[j][p];
    const lo = Math.max(0, x[p] - eps);
    const hi = Math.min(1, x[p] + eps);
    m += dw > 0 ? dw * lo : dw * hi;
  }
  return m;
}

export function logitsOf(w: number[][], b: number[], x: ArrayLike<number>): number[] {
  return w.map((row, k) => row.reduce((a, wi, i) => a + wi * x[i], b[k]));
}

/** Images on the 8-bit grid, drawn with a seed. */
export function gridImages(n: number, size: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Float32Array.from({ length: n * size }, () => Math.round(next() * 255) / 255);
}

/** Top-1 of a batch of logits. */
export function predictions(logits: Float32Array, k: number): number[] {
  const n = logits.length / k;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
    return best;
  });
}
