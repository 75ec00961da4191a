import * as ort from 'onnxruntime-node';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GRADIENT_MODELS, magnitudeMap, mapSsim, reconstructionGradientGraph, runGradientAnalysis } from '../../src/evaluation/gradients';
import { runTransfer } from '../../src/evaluation/transfer';
import { GraphBuilder } from '../../src/onnx/builder';
import { createSession } from '../../src/runtime/session';
import { FASHION_SMALL, writeEvalSet } from './model-set';

describe('gradient analysis', () => {
  it('differentiates the reconstruction MSE against the clean input: s(x) = 2x gives 4x / D', async () => {
    const b = new GraphBuilder('double', { opset: 17 });
    const x = b.input('input', ['N', 1, 2, 3]);
    b.output(b.mul(x, b.scalar(2)), 'reconstruction');
    const s = await createSession(reconstructionGradientGraph(b.build()));
    try {
      const images = Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5, 0.6);
      const t = new ort.Tensor('float32', images, [1, 1, 2, 3]);
      const r = await s.run({ input: t, target: t }, ['grad_input']);
      expect(Array.from(r.grad_input.data as Float32Array)).toEqual(Array.from(images, (v) => expect.closeTo((4 * v) / 6, 6)));
    } finally {
      await s.release();
    }
  });

  it('magnitude maps: the L2 norm over channels, scaled to 255', () => {
    // 2 channels × 1 × 2 pixels
    const map = magnitudeMap(Float32Array.of(3, 0, 4, 1), 0, [2, 1, 2]);
    expect(Array.from(map)).toEqual([255, 51]);
    expect(Array.from(magnitudeMap(new Float32Array(4), 0, [1, 2, 2]))).toEqual([0, 0, 0, 0]);
  });

  it('SSIM (ssim.js, Gaussian window) is 1 for equal maps and low for unrelated ones', () => {
    const w = 16;
    const a = Uint8Array.from({ length: w * w }, (_, i) => ((i % w) * 16) % 256);
    const b = Uint8Array.from({ length: w * w }, (_, i) => (Math.floor(i / w) % 2 ? 255 : 0));
    expect(mapSsim(a, a, w, w)).toBeCloseTo(1, 10);
    expect(mapSsim(a, b, w, w)).toBeLessThan(0.3);
  });

  it('runs Table 1 on a model set: ten pairs, three label comparisons, example maps', async () => {
    const models = writeEvalSet({ seed: 4 });
    const r = await runGradientAnalysis({ models, data: FASHION_SMALL, limit: 6, seed: 2, batchSize: 4, examples: 2, progress: false, provider: 'cpu' });
    expect(r.pairs).toHaveLength(10);
    for (const p of r.pairs) {
      expect(p.n).toBe(6);
      expect(p.meanSsim).toBeGreaterThan(-1);
      expect(p.meanSsim).toBeLessThan(1);
    }
    expect(r.labels.map((l) => l.model)).toEqual(['f', 'fs', 'fae']);
    expect(r.examples).toHaveLength(2);
    for (const m of GRADIENT_MODELS) expect(Buffer.from(r.examples[0].maps[m], 'base64')).toHaveLength(784);
    const again = await runGradientAnalysis({ models, data: FASHION_SMALL, limit: 6, seed: 2, batchSize: 6, examples: 2, progress: false, provider: 'cpu' });
    expect(again.pairs).toEqual(r.pairs);
  });
});

describe('transferability', () => {
  it('fills the source × target × ε matrix; each target’s clean count is its own', async () => {
    const a = writeEvalSet({ seed: 21 });
    const b = writeEvalSet({ seed: 31 });
    const m = JSON.parse(readFileSync(join(b, 'manifest.json'), 'utf8'));
    writeFileSync(join(b, 'manifest.json'), JSON.stringify({ ...m, name: 'other' }));
    const r = await runTransfer({ models: [a, b], data: FASHION_SMALL, eps: [0.02, 0.1], limit: 12, seed: 1, progress: false, provider: 'cpu' });
    expect(r.classifiers.map((c) => c.name)).toEqual(['tiny', 'other']);
    expect(r.cells).toHaveLength(2 * 2 * 2);
    for (const c of r.cells) {
      expect(c.n).toBe(12);
      const clean = r.classifiers.find((x) => x.name === c.target)!.cleanAccuracy!;
      expect(c.cleanCorrect).toBe(Math.round(clean * 12));
    }
    await expect(runTransfer({ models: [a], data: FASHION_SMALL, eps: [0.1], seed: 1, progress: false })).rejects.toThrow(/at least two/);
  });
});
