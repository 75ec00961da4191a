import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { loadModel } from '../../src/onnx/io';
import { buildServingGraph } from '../../src/serving/graph';
import { createSession } from '../../src/runtime/session';
import { writeTinySet } from '../models/tiny-set';
import { encodeModel } from '../../src/onnx/io';

function softmax(v: Float32Array): number[] {
  const m = Math.max(...v);
  const e = [...v].map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('serving graph', () => {
  it('matches classifier and S2SNet run separately: probs = softmax f(norm(s(clip(x+n)))), score = KL', async () => {
    const set = writeTinySet({ mean: [0.5], std: [0.25] });
    const cls = loadModel(join(set.dir, 'classifier.onnx'));
    const s2s = loadModel(join(set.dir, 's2snet.onnx'));
    const g = buildServingGraph(set.manifest, { classifier: cls, s2snet: s2s });
    expect(g.inputs.map((v) => v.name).sort()).toEqual(['input', 'noise']);
    expect(g.outputs.map((v) => v.name)).toEqual(['probs', 'score', 'reconstruction']);

    const serving = await createSession(g);
    const fs = await createSession(cls);
    const ss = await createSession(s2s);
    const n = 3;
    const size = 28 * 28;
    const x = new Float32Array(n * size).map((_, i) => ((i * 7919) % 255) / 255);
    const noise = new Float32Array(n * size).map((_, i) => (((i * 104729) % 200) - 100) / 1000);
    const dims = [n, 1, 28, 28];
    const out = await serving.run({ input: new ort.Tensor('float32', x, dims), noise: new ort.Tensor('float32', noise, dims) });

    const noised = x.map((v, i) => Math.min(1, Math.max(0, v + noise[i])));
    const rec = (await ss.run({ input: new ort.Tensor('float32', noised, dims) })).reconstruction.data as Float32Array;
    const norm = (a: Float32Array) => a.map((v) => (v - 0.5) / 0.25);
    const lDef = (await fs.run({ input: new ort.Tensor('float32', norm(rec), dims) })).logits.data as Float32Array;
    const lClean = (await fs.run({ input: new ort.Tensor('float32', norm(x), dims) })).logits.data as Float32Array;

    const probs = out.probs.data as Float32Array;
    const score = out.score.data as Float32Array;
    const recOut = out.reconstruction.data as Float32Array;
    for (let i = 0; i < rec.length; i++) expect(recOut[i]).toBeCloseTo(rec[i], 5);
    for (let b = 0; b < n; b++) {
      const pd = softmax(lDef.subarray(b * 10, b * 10 + 10));
      const pc = softmax(lClean.subarray(b * 10, b * 10 + 10));
      for (let j = 0; j < 10; j++) expect(probs[b * 10 + j]).toBeCloseTo(pd[j], 5);
      const kl = pc.reduce((acc, p, j) => acc + p * (Math.log(p) - Math.log(pd[j])), 0);
      expect(score[b]).toBeCloseTo(Math.max(0, kl), 5);
    }
    expect(encodeModel(g).length).toBeLessThan(encodeModel(cls).length + encodeModel(s2s).length + 4096);
  });
});
