import * as ort from 'onnxruntime-node';
import { buildGradientGraph } from '../../src/autodiff/gradient';
import { supportedOps } from '../../src/autodiff/registry';
import { appendCrossEntropy, appendKl, appendMse, appendTrades } from '../../src/autodiff/losses';
import { toTrainingBatchNorm } from '../../src/autodiff/batchNorm';
import { GraphBuilder } from '../../src/onnx/builder';
import { DataType } from '../../src/onnx/dtype';
import { attr } from '../../src/onnx/graph';
import { int64Tensor } from '../../src/onnx/tensor';
import { createSession } from '../../src/runtime/session';
import { UserError } from '../../src/util/errors';
import { Rng } from '../../src/util/random';
import { expectAccurate, gradCheck, randomTensor } from './gradcheck';

const D = DataType.DOUBLE;

function mlp(dt = DataType.FLOAT) {
  const b = new GraphBuilder('mlp', { seed: 4 });
  const x = b.input('input', ['N', 5], dt);
  const w1 = b.constant(randomTensor(new Rng(1), [5, 4], dt), 'w1');
  const w2 = b.constant(randomTensor(new Rng(2), [4, 3], dt), 'w2');
  const h = b.tanh(b.matmul(x, w1));
  b.output(b.matmul(h, w2), 'logits');
  return b.build();
}

describe('gradient engine', () => {
  test('outputs are the forward outputs, the loss, then grad_<name> for each wrt, with shapes', () => {
    const ce = appendCrossEntropy(mlp(), 'logits');
    const r = buildGradientGraph({ graph: ce.graph, loss: ce.loss, wrt: ['input', 'w1'] });
    expect(r.graph.outputs.map((o) => o.name)).toEqual(['logits', 'loss', 'grad_input', 'grad_w1']);
    expect(r.graph.outputs[2].shape).toEqual(['N', 5]);
    expect(r.gradients).toEqual(new Map([['input', 'grad_input'], ['w1', 'grad_w1']]));
    expect(r.graph.opset).toBeGreaterThanOrEqual(13);
  });

  test('frozen initializers and side branches get no gradient nodes', () => {
    const b = new GraphBuilder('net', { seed: 1 });
    const x = b.input('input', ['N', 3, 8, 8]);
    const frozen = b.conv(x, { out: 4, kernel: 3, name: 'frozen' });
    const trained = b.conv(b.relu(frozen), { out: 4, kernel: 3, name: 'trained' });
    b.output(b.globalAvgPool(trained), 'y');
    b.output(b.sigmoid(frozen), 'side');
    const g = b.build();
    const before = g.nodes.length;
    const r = buildGradientGraph({ graph: g, loss: 'y', wrt: ['trained.weight'] });
    const backward = r.graph.nodes.slice(before);
    // Only trained's weight gradient is needed: nothing flows into the relu, the frozen conv or the side branch.
    expect(backward.some((n) => n.opType === 'ConvTranspose' || (n.opType === 'Conv' && n.inputs.includes('frozen.weight')))).toBe(false);
    expect(backward.some((n) => n.name.includes('frozen') || n.name.includes('relu') || n.name.includes('sigmoid'))).toBe(false);
    expect(r.graph.nodes.filter((n) => n.opType === 'Greater')).toHaveLength(0);
  });

  test('an unsupported op on the path is an error naming the op, the node and the supported ops', () => {
    const b = new GraphBuilder('bad');
    const x = b.input('x', [2, 3]);
    const y = b.op('Erf', [x], {}, 'my_erf');
    b.output(b.op('ReduceSum', [y]), 'loss');
    const run = () => buildGradientGraph({ graph: b.build(), loss: 'loss', wrt: ['x'] });
    expect(run).toThrow(UserError);
    expect(run).toThrow(/no gradient for op Erf \(Erf node 'my_erf'\); supported ops: .*Conv.*MaxPool/);
  });

  test('an unsupported op off the path needs no rule', () => {
    const b = new GraphBuilder('ok');
    const x = b.input('x', [2, 3]);
    b.output(b.op('Erf', [x]), 'side');
    b.output(b.op('ReduceSum', [b.tanh(x)]), 'loss');
    const w = b.constant(randomTensor(new Rng(1), [3]), 'w');
    b.output(b.op('Erf', [b.mul(x, w)]), 'side2');
    expect(() => buildGradientGraph({ graph: b.build(), loss: 'loss', wrt: ['x'] })).not.toThrow();
  });

  test('Shape-driven subgraphs (PyTorch flatten pattern) carry no gradient', async () => {
    const b = new GraphBuilder('flat');
    const x = b.input('x', ['N', 2, 3], D);
    const shape = b.op('Shape', [x]);
    const n = b.op('Gather', [shape, b.constant(int64Tensor([], [0]), 'zero')], { axis: attr.int(0) });
    const target = b.op('Concat', [b.op('Unsqueeze', [n, b.ints64([0])]), b.ints64([-1])], { axis: attr.int(0) });
    b.output(b.op('Reshape', [b.mul(x, x), target]), 'y');
    const rng = new Rng(3);
    expectAccurate(await gradCheck({ graph: b.build(), feeds: { x: randomTensor(rng, [2, 2, 3], D) }, wrt: ['x'] }));
  });

  test('a value used by several nodes accumulates its gradients', async () => {
    const b = new GraphBuilder('fan', { opset: 17 });
    const x = b.input('x', [3, 4], D);
    const s = b.sigmoid(x);
    b.output(b.add(b.mul(s, x), b.tanh(s)), 'y');
    b.output(s, 's');
    const rng = new Rng(5);
    expectAccurate(await gradCheck({ graph: b.build(), feeds: { x: randomTensor(rng, [3, 4], D) }, wrt: ['x'] }));
  });

  test('stopGradient treats a value as a constant', async () => {
    const b = new GraphBuilder('stop');
    const x = b.input('x', [3], D);
    const s = b.mul(x, x);
    b.output(b.op('ReduceSum', [b.mul(s, x)], { keepdims: attr.int(0) }), 'loss');
    const r = buildGradientGraph({ graph: b.build(), loss: 'loss', wrt: ['x'], stopGradient: [s] });
    const sess = await createSession(r.graph);
    const out = await sess.run({ x: new ort.Tensor('float64', Float64Array.of(1, 2, 3), [3]) });
    // d/dx (s·x) with s constant = s = x²
    expect(Array.from(out.grad_x.data as Float64Array)).toEqual([1, 4, 9]);
  });

  test('a wrt value that does not reach the loss gets a zero gradient', async () => {
    const b = new GraphBuilder('zero');
    const x = b.input('x', [2, 2]);
    const unused = b.input('unused', ['N', 3]);
    b.output(b.op('ReduceSum', [x], { keepdims: attr.int(0) }), 'loss');
    b.output(b.relu(unused), 'other');
    const r = buildGradientGraph({ graph: b.build(), loss: 'loss', wrt: ['x', 'unused'] });
    const sess = await createSession(r.graph);
    const out = await sess.run({ x: new ort.Tensor('float32', new Float32Array(4), [2, 2]), unused: new ort.Tensor('float32', new Float32Array(6).fill(1), [2, 3]) });
    expect(out.grad_unused.dims).toEqual([2, 3]);
    expect(Array.from(out.grad_unused.data as Float32Array)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(out.grad_x.data as Float32Array)).toEqual([1, 1, 1, 1]);
  });

  test('opset 18 graphs keep their opset; reductions take axes as inputs', async () => {
    const b = new GraphBuilder('o18', { opset: 18, seed: 2 });
    const x = b.input('x', ['N', 2, 6, 6]);
    const h = b.relu(b.batchNorm(b.conv(x, { out: 3, kernel: 3 })));
    const pooled = b.op('ReduceMean', [h, b.ints64([2, 3])], { keepdims: attr.int(0) });
    b.output(b.concat([pooled, b.op('ReduceMean', [x, b.ints64([2, 3])], { keepdims: attr.int(0) })], 1), 'y');
    const g = b.build();
    const r = buildGradientGraph({ graph: g, loss: 'y', wrt: ['x'] });
    expect(r.graph.opset).toBe(18);
    expect(r.graph.nodes.filter((n) => n.opType === 'ReduceMean' && n.attrs.axes)).toHaveLength(0);
    const rng = new Rng(6);
    expectAccurate(await gradCheck({ graph: g, feeds: { x: randomTensor(rng, [2, 2, 6, 6]) }, wrt: ['x', 'conv.weight'], linearize: true }));
    const t = toTrainingBatchNorm(g);
    expect(t.graph.opset).toBe(18);
    const tg = { ...t.graph, outputs: t.graph.outputs.filter((o) => o.name === 'y') };
    // Batch statistics make y nonlinear in x: a small step (kinks still frozen).
    expectAccurate(await gradCheck({ graph: tg, feeds: { x: randomTensor(rng, [3, 2, 6, 6]) }, wrt: ['x', 'bn.weight'], linearize: true, eps: 1e-2 }));
  });

  test('a graph that cannot be raised to opset 16 gets a clear error where a rule needs it', () => {
    const b = new GraphBuilder('old', { opset: 13 });
    const x = b.input('x', [1, 1, 5, 5]);
    const y = b.op('MaxPool', [x], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([1, 1]) });
    const bn = b.batchNorm(y);
    const [, extra] = b.node('BatchNormalization', [bn, 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], {}, { outputs: 2 });
    b.output(bn, 'y');
    b.output(extra, 'stats');
    expect(() => buildGradientGraph({ graph: b.build(), loss: 'y', wrt: ['x'] })).toThrow(/needs opset 16, and this graph stays at opset 13/);
  });

  test('bad requests are user errors', () => {
    const g = mlp();
    expect(() => buildGradientGraph({ graph: g, loss: 'logits', wrt: ['nope'] })).toThrow(/'nope' is neither an input nor an initializer/);
    expect(() => buildGradientGraph({ graph: g, loss: 'nope', wrt: ['input'] })).toThrow(/loss 'nope' is not a value/);
    expect(() => buildGradientGraph({ graph: { ...g, opset: 11 }, loss: 'logits', wrt: ['input'] })).toThrow(/opset 11/);
  });

  test('opset 13 graphs are raised to 17; the cross-entropy matches a direct computation', async () => {
    const g = { ...mlp(D), opset: 13 };
    const ce = appendCrossEntropy(g, 'logits');
    const r = buildGradientGraph({ graph: ce.graph, loss: ce.loss, wrt: ['input'] });
    expect(r.graph.opset).toBe(17);
    const rng = new Rng(8);
    const x = randomTensor(rng, [4, 5], D);
    const labels = int64Tensor([4], [0, 2, 1, 2]);
    const sess = await createSession(r.graph);
    const out = await sess.run({ input: x, labels });
    // Analytic CE gradient wrt logits is softmax − onehot; check against the same quantity via a pure-JS softmax.
    const logits = out.logits.data as Float64Array;
    const loss = out.loss.data as Float64Array;
    for (let n = 0; n < 4; n++) {
      const row = Array.from(logits.slice(n * 3, n * 3 + 3));
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      expect(loss[n]).toBeCloseTo(lse - row[Number(labels.data[n])], 10);
    }
    expect(supportedOps()).toEqual(expect.arrayContaining(['Conv', 'ConvTranspose', 'MaxPool', 'BatchNormalization', 'Gemm', 'Resize']));
  });
});

describe('losses', () => {
  test('cross-entropy: per-sample [N] loss and its gradient (float64)', async () => {
    const ce = appendCrossEntropy(mlp(D), 'logits');
    expect(ce.graph.inputs.find((v) => v.name === 'labels')).toMatchObject({ dataType: DataType.INT64, shape: ['N'] });
    const rng = new Rng(2);
    const results = await gradCheck({
      graph: { ...ce.graph, outputs: [{ name: ce.loss, dataType: D }] },
      feeds: { input: randomTensor(rng, [4, 5], D), labels: int64Tensor([4], [2, 0, 1, 2]) },
      wrt: ['input', 'w1', 'w2'],
    });
    expectAccurate(results);
  });

  test('MSE: mean over non-batch axes, gradient wrt prediction and target', async () => {
    const b = new GraphBuilder('ae');
    const x = b.input('x', ['N', 2, 3, 3], D);
    const t = b.input('t', ['N', 2, 3, 3], D);
    b.output(b.tanh(x), 'reconstruction');
    const m = appendMse(b.build(), 'reconstruction', t);
    const rng = new Rng(4);
    const feeds = { x: randomTensor(rng, [2, 2, 3, 3], D), t: randomTensor(rng, [2, 2, 3, 3], D) };
    const sess = await createSession({ ...m.graph, outputs: [{ name: m.loss, dataType: D }] });
    const out = await sess.run(feeds);
    expect(out[m.loss].dims).toEqual([2]);
    let manual = 0;
    for (let i = 0; i < 18; i++) manual += (Math.tanh(feeds.x.data[i] as number) - (feeds.t.data[i] as number)) ** 2;
    expect((out[m.loss].data as Float64Array)[0]).toBeCloseTo(manual / 18, 12);
    expectAccurate(await gradCheck({ graph: { ...m.graph, outputs: [{ name: m.loss, dataType: D }] }, feeds, wrt: ['x', 't'] }));
  });

  test('KL(softmax P ‖ softmax Q): zero for equal logits, gradients into both', async () => {
    const b = new GraphBuilder('kl');
    const p = b.input('p', ['N', 4], D);
    const q = b.input('q', ['N', 4], D);
    b.output(b.add(p, q), 'unused');
    const k = appendKl(b.build(), p, q);
    const g = { ...k.graph, outputs: [{ name: k.loss, dataType: D }] };
    const rng = new Rng(6);
    const same = randomTensor(rng, [3, 4], D);
    const sess = await createSession(g);
    const zero = await sess.run({ p: same, q: same });
    for (const v of zero[k.loss].data as Float64Array) expect(Math.abs(v)).toBeLessThan(1e-12);
    expectAccurate(await gradCheck({ graph: g, feeds: { p: randomTensor(rng, [3, 4], D), q: randomTensor(rng, [3, 4], D) }, wrt: ['p', 'q'] }));
  });

  test('TRADES: CE(clean, y) + β·KL(clean ‖ adversarial) per sample — known values, then finite differences into both logits', async () => {
    const b = new GraphBuilder('trades', { seed: 1 });
    const c = b.input('c', ['N', 3], D);
    const a = b.input('a', ['N', 3], D);
    b.output(b.add(c, a), 'unused');
    const t = appendTrades(b.build(), c, a, 2.5);
    const g = { ...t.graph, outputs: [{ name: t.loss, dataType: D }] };
    const clean = [1, 0, -1, 0.5, 2, 0];
    const adv = [0, 1, 0, 0.5, 2, 0];
    const labels = [0, 2];
    const sess = await createSession(g);
    const out = (await sess.run({ c: { dataType: D, dims: [2, 3], data: Float64Array.from(clean) }, a: { dataType: D, dims: [2, 3], data: Float64Array.from(adv) }, labels: int64Tensor([2], labels) }))[t.loss].data as Float64Array;
    const logSoftmax = (v: number[]) => {
      const m = Math.log(v.reduce((s0, x) => s0 + Math.exp(x), 0));
      return v.map((x) => x - m);
    };
    for (let i = 0; i < 2; i++) {
      const lp = logSoftmax(clean.slice(3 * i, 3 * i + 3));
      const lq = logSoftmax(adv.slice(3 * i, 3 * i + 3));
      const kl = lp.reduce((s0, x, k) => s0 + Math.exp(x) * (x - lq[k]), 0);
      expect(out[i]).toBeCloseTo(-lp[labels[i]] + 2.5 * kl, 12);
    }
    // the second row's pair is identical: its loss is the clean CE alone
    expect(out[1]).toBeCloseTo(-logSoftmax([0.5, 2, 0])[2], 12);
    const rng = new Rng(7);
    expectAccurate(await gradCheck({ graph: g, feeds: { c: randomTensor(rng, [3, 3], D), a: randomTensor(rng, [3, 3], D), labels: int64Tensor([3], [1, 0, 2]) }, wrt: ['c', 'a'] }));
    expect(() => appendTrades(b.build(), c, a, -1)).toThrow(/β must be a non-negative number/);
  });
});

describe('training-form BatchNorm', () => {
  function bnNet(dt: DataType) {
    const b = new GraphBuilder('bn', { seed: 1 });
    const x = b.input('x', ['N', 3, 4, 4], dt);
    const y = b.batchNorm(x, { name: 'bn1', momentum: 0.9 });
    b.output(b.tanh(y), 'y');
    const g = b.build();
    if (dt === D) for (const [k, t] of g.initializers) g.initializers.set(k, { ...t, dataType: D, data: Float64Array.from(t.data as Float32Array) });
    // Non-trivial parameters and running statistics.
    const rng = new Rng(12);
    for (const k of ['bn1.weight', 'bn1.bias', 'bn1.running_mean']) g.initializers.set(k, randomTensor(rng, [3], dt));
    return g;
  }

  test('batch statistics in the forward, running statistics updated with unbiased variance', async () => {
    const t = toTrainingBatchNorm(bnNet(D));
    expect(t.runningStats.map((s) => [s.input, s.kind])).toEqual([
      ['bn1.running_mean', 'mean'],
      ['bn1.running_var', 'var'],
    ]);
    const rng = new Rng(3);
    const x = randomTensor(rng, [2, 3, 4, 4], D);
    const sess = await createSession(t.graph);
    const out = await sess.run({ x });
    const g = t.graph.initializers;
    const xd = x.data as Float64Array;
    for (let c = 0; c < 3; c++) {
      const vals: number[] = [];
      for (let n = 0; n < 2; n++) for (let i = 0; i < 16; i++) vals.push(xd[(n * 3 + c) * 16 + i]);
      const mu = vals.reduce((a, b) => a + b, 0) / 32;
      const v = vals.reduce((a, b) => a + (b - mu) ** 2, 0) / 32;
      const rm = g.get('bn1.running_mean')!.data[c] as number;
      expect((out[t.runningStats[0].updated].data as Float64Array)[c]).toBeCloseTo(0.9 * rm + 0.1 * mu, 12);
      expect((out[t.runningStats[1].updated].data as Float64Array)[c]).toBeCloseTo(0.9 * 1 + 0.1 * v * (32 / 31), 12);
      const scale = g.get('bn1.weight')!.data[c] as number;
      const bias = g.get('bn1.bias')!.data[c] as number;
      const y0 = Math.tanh(((vals[0] - mu) / Math.sqrt(v + 1e-5)) * scale + bias);
      expect((out.y.data as Float64Array)[c * 16]).toBeCloseTo(y0, 12);
    }
  });

  test('gradients through the batch statistics (float64 finite differences)', async () => {
    const t = toTrainingBatchNorm(bnNet(D));
    const graph = { ...t.graph, outputs: t.graph.outputs.filter((o) => o.name === 'y') };
    const rng = new Rng(9);
    expectAccurate(await gradCheck({ graph, feeds: { x: randomTensor(rng, [3, 3, 4, 4], D) }, wrt: ['x', 'bn1.weight', 'bn1.bias'], coords: 60 }));
  });

  test('the statistics are not differentiated op by op: one fused backward per BatchNorm', () => {
    const t = toTrainingBatchNorm(bnNet(DataType.FLOAT));
    const before = t.graph.nodes.length;
    const r = buildGradientGraph({ graph: { ...t.graph, outputs: [{ name: 'y', dataType: DataType.FLOAT }] }, loss: 'y', wrt: ['x', 'bn1.weight'] });
    const backward = r.graph.nodes.slice(before);
    expect(backward.filter((n) => n.name.startsWith('grad/bn1/train'))).toEqual([]);
    expect(backward.filter((n) => n.opType === 'Expand')).toEqual([]);
  });

  test('a training-mode node with its own momentum (statistics recomputed in the backward)', async () => {
    const b = new GraphBuilder('bnt', { opset: 15 });
    const x = b.input('x', [3, 2, 3, 3], D);
    const rng = new Rng(4);
    const p = ['s', 'b', 'm', 'v'].map((n) => b.constant(n === 'v' ? { ...randomTensor(rng, [2], D), data: Float64Array.of(1.5, 0.7) } : randomTensor(rng, [2], D), n));
    const [y] = b.node('BatchNormalization', [x, ...p], { training_mode: attr.int(1), momentum: attr.float(0.8) }, { outputs: 3 });
    b.output(b.tanh(y), 'y');
    expectAccurate(await gradCheck({ graph: b.build(), feeds: { x: randomTensor(rng, [3, 2, 3, 3], D) }, wrt: ['x', p[0], p[1]] }));
  });

  test('a selection predicate leaves other BatchNorm nodes in inference form', () => {
    const t = toTrainingBatchNorm(bnNet(DataType.FLOAT), { nodes: (n) => n.name !== 'bn1' });
    expect(t.runningStats).toEqual([]);
    expect(t.graph.nodes.some((n) => n.opType === 'BatchNormalization')).toBe(true);
  });
});
