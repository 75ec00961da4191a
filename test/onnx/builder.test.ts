import { GraphBuilder } from '../../src/onnx/builder';
import { DataType } from '../../src/onnx/dtype';
import { decodeModel, encodeModel, loadModel, saveModel } from '../../src/onnx/io';
import { floatTensor } from '../../src/onnx/tensor';
import { createSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Direct 2-D convolution in float64, written out in the test as the independent reference. */
function convReference(
  x: Float32Array, [n, c, h, w]: number[],
  weight: Float32Array, [o, ci, kh, kw]: number[],
  bias: Float32Array, stride: number, pad: number, group = 1,
): { data: Float64Array; dims: number[] } {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(n * o * oh * ow);
  const opg = o / group;
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / opg);
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = bias[oc];
          for (let ic = 0; ic < ci; ic++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = y * stride - pad + ky;
                const ix = xx * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += x[((b * c + g * ci + ic) * h + iy) * w + ix] * weight[((oc * ci + ic) * kh + ky) * kw + kx];
              }
          out[((b * o + oc) * oh + y) * ow + xx] = s;
        }
    }
  return { data: out, dims: [n, o, oh, ow] };
}

function randomData(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

describe('GraphBuilder', () => {
  it.each([
    { name: '3x3 pad 1 stride 1', c: 3, o: 4, h: 7, w: 9, k: 3, stride: 1, pad: 1, group: 1 },
    { name: '3x3 stride 2 odd input', c: 2, o: 5, h: 11, w: 8, k: 3, stride: 2, pad: 1, group: 1 },
    { name: 'grouped 5x5', c: 4, o: 6, h: 9, w: 9, k: 5, stride: 1, pad: 2, group: 2 },
  ])('conv $name matches a hand-written convolution', async ({ c, o, h, w, k, stride, pad, group }) => {
    const b = new GraphBuilder('conv', { seed: 3 });
    const x = b.input('input', ['N', c, h, w]);
    const y = b.conv(x, { out: o, kernel: k, stride, pad, group, name: 'layer' });
    b.output(y, 'y');
    const g = b.build();
    const rng = new Rng(11);
    // Give the bias non-zero values so it is checked too.
    const bias = randomData(rng, o);
    g.initializers.set('layer.bias', floatTensor([o], bias));
    const weight = g.initializers.get('layer.weight')!;
    expect(weight.dims).toEqual([o, c / group, k, k]);
    const n = 2;
    const input = randomData(rng, n * c * h * w);
    const session = await createSession(g);
    const out = (await session.run({ input: floatTensor([n, c, h, w], input) })).y;
    const ref = convReference(input, [n, c, h, w], weight.data as Float32Array, weight.dims, bias, stride, pad, group);
    expect(out.dims).toEqual(ref.dims);
    expect(b.shape(y)).toEqual(['N', ...ref.dims.slice(1)]);
    const got = out.data as Float32Array;
    for (let i = 0; i < ref.data.length; i++) expect(got[i]).toBeCloseTo(ref.data[i], 4);
  });

  it('He initialisation has the documented spread and is reproducible from the seed', () => {
    const make = (seed: number) => {
      const b = new GraphBuilder('he', { seed });
      b.output(b.conv(b.input('input', [1, 16, 8, 8]), { out: 64, kernel: 3, name: 'c' }));
      return b.build().initializers.get('c.weight')!.data as Float32Array;
    };
    const w = make(5);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(Math.sqrt(2 / (16 * 9)) * 0.9);
    expect(std).toBeLessThan(Math.sqrt(2 / (16 * 9)) * 1.1);
    expect(make(5)).toEqual(w);
    expect(make(6)).not.toEqual(w);
  });

  it('infers shapes that agree with what onnxruntime computes', async () => {
    const b = new GraphBuilder('shapes', { seed: 1 });
    const x = b.input('input', ['N', 1, 28, 28]);
    const c1 = b.relu(b.batchNorm(b.conv(x, { out: 8, kernel: 3 })));
    const p = b.maxPoolWithIndices(c1, { kernel: 2 });
    const c2 = b.conv(p.output, { out: 16, kernel: 3, stride: 2, pad: 1 });
    const ap = b.averagePool(c2, { kernel: 3, stride: 2, pad: 1 });
    const mp = b.maxPool(c2, { kernel: 3, stride: 2, pad: 1, ceil: true });
    const cat = b.concat([ap, mp], 1);
    const up = b.upsampleNearest(cat, 2);
    const t = b.convTranspose(up, { out: 4, kernel: 3, stride: 2, pad: 1, outputPadding: 1 });
    const un = b.maxUnpool(p.output, p.indices, { kernel: 2, like: c1 });
    const gap = b.flatten(b.globalAvgPool(c2));
    const fc = b.linear(gap, { out: 10 });
    const probs = b.softmax(fc);
    const r = b.reshape(t, [0, -1]);
    const outs = [c1, p.output, c2, ap, mp, cat, up, t, un, gap, fc, probs, r];
    outs.forEach((o, i) => b.output(o, `out${i}`));
    const g = b.build();
    const s = await createSession(g);
    const res = await s.run({ input: floatTensor([3, 1, 28, 28]) });
    outs.forEach((o, i) => {
      const inferred = b.shape(o).map((d) => (d === 'N' ? 3 : d));
      expect({ value: o, shape: inferred }).toEqual({ value: o, shape: res[`out${i}`].dims });
    });
  });

  it('round-trips through ModelProto bytes and files without changing anything', async () => {
    const b = new GraphBuilder('rt', { seed: 9 });
    const x = b.input('input', ['N', 3, 10, 10]);
    b.output(b.linear(b.flatten(b.relu(b.conv(x, { out: 4, kernel: 3 }))), { out: 5 }), 'logits');
    const g = b.build();
    g.metadata = { purpose: 'test' };
    const dir = mkdtempSync(join(tmpdir(), 's2s-rt-'));
    saveModel(g, join(dir, 'm.onnx'));
    const back = loadModel(join(dir, 'm.onnx'));
    expect(back.inputs).toEqual(g.inputs);
    expect(back.outputs).toEqual(g.outputs);
    expect(back.metadata).toEqual({ purpose: 'test' });
    expect([...back.initializers.keys()]).toEqual([...g.initializers.keys()]);
    for (const [k, t] of g.initializers) expect(back.initializers.get(k)!.data).toEqual(t.data);
    expect(encodeModel(decodeModel(encodeModel(g)))).toEqual(encodeModel(g));
    const input = floatTensor([2, 3, 10, 10], Float32Array.from({ length: 600 }, (_, i) => Math.sin(i)));
    const a = (await (await createSession(g)).run({ input })).logits.data;
    const c = (await (await createSession(join(dir, 'm.onnx'))).run({ input })).logits.data;
    expect(c).toEqual(a);
  });

  it('int64 initializers survive the round trip', () => {
    const b = new GraphBuilder('ints');
    const x = b.input('input', [2, 6]);
    b.output(b.reshape(x, [3, 4]), 'y');
    const g = decodeModel(encodeModel(b.build()));
    const shape = [...g.initializers.values()].find((t) => t.dataType === DataType.INT64)!;
    expect(Array.from(shape.data as BigInt64Array)).toEqual([3n, 4n]);
  });
});
