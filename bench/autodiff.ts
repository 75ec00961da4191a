/**
 * Autodiff benchmark (not a test). Two parts, on this machine's CPU:
 *
 * 1. Conv gradient formulations for 3×3 convolutions at batch 64: the layer
 *    the issue measured (32→32 channels at 28×28), ResNet-20's first stage
 *    (16→16 at 28×28) and late layers (64→64, 256→256 at 7×7): forward, the
 *    input gradient as ConvTranspose vs a Conv with the flipped kernel, and
 *    the weight gradient six ways. The engine's choice
 *    (src/autodiff/ops/conv.ts) comes from these numbers.
 * 2. Whole models at batch 64: forward (inference graph), forward + backward
 *    (training-form BatchNorm, loss, gradients of every parameter), and a
 *    training step (the same plus plain SGD updates in one graph, parameters
 *    fed back from the previous step's outputs), with the ratio step/forward.
 *
 *   npm run bench:autodiff [-- --iters 20 --threads 0 --clock wall|cpu --part convs,models --models ae,segnet-small,resnet-small --convs 64x32x32@28,…]
 */
import * as ort from 'onnxruntime-node';
import { buildArchitecture } from '../src/architectures/architectures';
import { toTrainingBatchNorm } from '../src/autodiff/batchNorm';
import { buildGradientGraph } from '../src/autodiff/gradient';
import { appendCrossEntropy, appendMse } from '../src/autodiff/losses';
import { GraphBuilder } from '../src/onnx/builder';
import { DataType } from '../src/onnx/dtype';
import { Attr, Graph, attr, cloneGraph } from '../src/onnx/graph';
import { floatTensor } from '../src/onnx/tensor';
import { createSession } from '../src/runtime/session';
import { Rng } from '../src/util/random';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const iters = Number(arg('iters', '20'));
const threads = Number(arg('threads', '0'));
const parts = arg('part', 'convs,models').split(',');
const models = arg('models', 'ae,segnet-small,resnet-small').split(',');
/** conv shapes for part 1 as n×c→o@hw, comma-separated */
const convShapes = arg('convs', '64x32x32@28,64x16x16@28,64x64x64@7,64x256x256@7').split(',').map((t) => {
  const m = /^(\d+)x(\d+)x(\d+)@(\d+)$/.exec(t);
  if (!m) throw new Error(`bad --convs entry '${t}' (expected e.g. 64x32x32@28)`);
  const [n, c, o, hw] = m.slice(1).map(Number);
  return { label: `${n}×${c}→${o} @${hw}`, n, c, o, hw };
});
const BATCH = 64;

function random(dims: number[], seed: number): ort.Tensor {
  const rng = new Rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal();
  return new ort.Tensor('float32', d, dims);
}

interface Timing {
  median: number;
  min: number;
}

/**
 * --clock cpu: time by this process's CPU time instead of wall time. With
 * --threads 1 that is the work done, nearly unaffected by other processes
 * competing for the cores (use it on a busy machine; wall time otherwise).
 */
const clock = arg('clock', 'wall');
const now = clock === 'cpu' ? () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
} : () => performance.now();

/**
 * Median and minimum wall time of each function, after 3 warm-up rounds. The
 * functions run interleaved, round after round, so that load from other
 * processes falls on all of them alike and their ratios stay meaningful.
 */
async function timeAll(runs: (() => Promise<unknown>)[]): Promise<Timing[]> {
  for (let i = 0; i < 3; i++) for (const r of runs) await r();
  const ts: number[][] = runs.map(() => []);
  for (let i = 0; i < iters; i++) {
    for (let k = 0; k < runs.length; k++) {
      const t = now();
      await runs[k]();
      ts[k].push(now() - t);
    }
  }
  return ts.map((t) => {
    t.sort((a, b) => a - b);
    return { median: t[Math.floor(t.length / 2)], min: t[0] };
  });
}

const fmt = (t: Timing) => `${t.median.toFixed(1).padStart(7)} ms (min ${t.min.toFixed(1)})`;

async function timeGraphs(items: [Graph, Record<string, ort.Tensor>][]): Promise<Timing[]> {
  const sessions = await Promise.all(items.map(([g]) => createSession(g, { intraOpThreads: threads })));
  const t = await timeAll(sessions.map((s, i) => () => s.run(items[i][1])));
  for (const s of sessions) await s.release();
  return t;
}

// ---------- part 1: conv gradient formulations ----------

interface ConvShape {
  label: string;
  n: number;
  c: number;
  o: number;
  hw: number;
}

async function convStudy(sh: ConvShape): Promise<void> {
  const { n, c, o, hw } = sh;
  const k = 3;
  const p = hw * hw;
  const x = random([n, c, hw, hw], 1);
  const dy = random([n, o, hw, hw], 2);
  const w = random([o, c, k, k], 3);
  const convAttrs: Record<string, Attr> = { kernel_shape: attr.ints([k, k]), pads: attr.ints([1, 1, 1, 1]) };
  const graph = (name: string, inputs: [string, number[]][], body: (b: GraphBuilder) => string) => {
    const b = new GraphBuilder(name);
    for (const [nm, dims] of inputs) b.input(nm, dims);
    b.output(body(b), 'out');
    return b.build();
  };
  const X: [string, number[]] = ['x', [n, c, hw, hw]];
  const DY: [string, number[]] = ['dy', [n, o, hw, hw]];
  const W: [string, number[]] = ['w', [o, c, k, k]];
  const eye = floatTensor([c * k * k, 1, k, k]);
  for (let ch = 0; ch < c; ch++) for (let t = 0; t < k * k; t++) (eye.data as Float32Array)[(ch * k * k + t) * k * k + t] = 1;
  const im2col = (b: GraphBuilder) => b.op('Reshape', [b.op('Conv', ['x', b.constant(eye, 'eye')], { ...convAttrs, group: attr.int(c) }), b.ints64([n, c * k * k, p])]);
  const rows: [string, Graph, Record<string, ort.Tensor>][] = [
    ['forward Conv', graph('fwd', [X, W], (b) => b.op('Conv', ['x', 'w'], convAttrs)), { x, w }],
    ['dX  ConvTranspose(dy, W)', graph('dxT', [DY, W], (b) => b.op('ConvTranspose', ['dy', 'w'], convAttrs)), { dy, w }],
    [
      'dX  Conv(dy, flipped W)            [chosen, stride 1]',
      graph('dxC', [DY, W], (b) => {
        const wt = b.transpose('w', [1, 0, 2, 3]);
        const wf = b.op('Slice', [wt, b.ints64([-1, -1]), b.ints64([-(2 ** 62), -(2 ** 62)]), b.ints64([2, 3]), b.ints64([-1, -1])]);
        return b.op('Conv', ['dy', wf], convAttrs);
      }),
      { dy, w },
    ],
    [
      'dW  A: Conv over batch-transposed tensors',
      graph('A', [X, DY], (b) => b.transpose(b.op('Conv', [b.transpose('x', [1, 0, 2, 3]), b.transpose('dy', [1, 0, 2, 3])], { pads: attr.ints([1, 1, 1, 1]) }), [1, 0, 2, 3])),
      { x, dy },
    ],
    [
      'dW  B: 9 shifted slices + one Gemm',
      graph('B', [X, DY], (b) => {
        const xt = b.transpose(b.op('Pad', ['x', b.ints64([0, 0, 1, 1, 0, 0, 1, 1])]), [1, 0, 2, 3]);
        const sl: string[] = [];
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) sl.push(b.op('Unsqueeze', [b.op('Slice', [xt, b.ints64([i, j]), b.ints64([i + hw, j + hw]), b.ints64([2, 3])]), b.ints64([1])]));
        const cols = b.op('Reshape', [b.concat(sl, 1), b.ints64([c * k * k, n * p])]);
        const dyt = b.op('Reshape', [b.transpose('dy', [1, 0, 2, 3]), b.ints64([o, n * p])]);
        return b.op('Gemm', [dyt, cols], { transB: attr.int(1) });
      }),
      { x, dy },
    ],
    [
      'dW  C: one batched MatMul per kernel offset, strided Slices [chosen: ≥8 ch, many px]',
      graph('C', [X, DY], (b) => {
        const xp = b.op('Pad', ['x', b.ints64([0, 0, 1, 1, 0, 0, 1, 1])]);
        const d3 = b.op('Reshape', ['dy', b.ints64([n, o, p])]);
        const parts: string[] = [];
        for (let i = 0; i < k; i++)
          for (let j = 0; j < k; j++) {
            const s = b.op('Reshape', [b.op('Slice', [xp, b.ints64([i, j]), b.ints64([i + hw, j + hw]), b.ints64([2, 3])]), b.ints64([n, c, p])]);
            parts.push(b.op('Unsqueeze', [b.op('ReduceSum', [b.op('MatMul', [d3, b.transpose(s, [0, 2, 1])]), b.ints64([0])], { keepdims: attr.int(0) }), b.ints64([2])]));
          }
        return b.concat(parts, 2);
      }),
      { x, dy },
    ],
    [
      'dW  D: depthwise-Conv im2col + batched MatMul + ReduceSum [chosen, <8 ch]',
      graph('D', [X, DY], (b) => b.op('ReduceSum', [b.op('MatMul', [b.op('Reshape', ['dy', b.ints64([n, o, p])]), b.transpose(im2col(b), [0, 2, 1])]), b.ints64([0])], { keepdims: attr.int(0) })),
      { x, dy },
    ],
    [
      'dW  E: depthwise-Conv im2col, batch folded into one Gemm [chosen: many ch, few px]',
      graph('E', [X, DY], (b) => {
        const ct = b.op('Reshape', [b.transpose(im2col(b), [1, 0, 2]), b.ints64([c * k * k, -1])]);
        const dt = b.op('Reshape', [b.transpose(b.op('Reshape', ['dy', b.ints64([n, o, p])]), [1, 0, 2]), b.ints64([o, -1])]);
        return b.op('Gemm', [dt, ct], { transB: attr.int(1) });
      }),
      { x, dy },
    ],
  ];
  // What the engine emits for this layer: forward + dX + dW + db in one graph. The loss
  // Σ y·r with r fed at run time keeps dy from being a constant ORT could fold away.
  const b = new GraphBuilder('layer', { seed: 1 });
  const y = b.conv(b.input('x', [n, c, hw, hw]), { out: o, kernel: 3, name: 'conv' });
  b.output(b.mul(y, b.input('r', [n, o, hw, hw])), 'loss');
  const engine = buildGradientGraph({ graph: b.build(), loss: 'loss', wrt: ['x', 'conv.weight', 'conv.bias'] }).graph;
  rows.push(['engine: forward + dX + dW + db in one graph', engine, { x, r: dy }]);
  console.log(`\n${sh.label}: 3×3 conv ${c}→${o}, input ${n}×${c}×${hw}×${hw}`);
  const times = await timeGraphs(rows.map(([, g, feeds]) => [g, feeds]));
  rows.forEach(([label], i) => console.log(`  ${label.padEnd(76)} ${fmt(times[i])}`));
}

// ---------- part 2: models ----------

/** The reference autoencoder: 2 stages at 32/64 channels, nearest upsampling in place of unpooling. */
function aeUpsample(): Graph {
  const b = new GraphBuilder('ae', { seed: 3 });
  let h = b.input('input', ['N', 1, 28, 28]);
  const cbr = (v: string, out: number, name: string) => b.relu(b.batchNorm(b.conv(v, { out, kernel: 3, name }), { name: `${name}.bn` }));
  h = b.maxPool(cbr(h, 32, 'enc1'), { kernel: 2 });
  h = b.maxPool(cbr(h, 64, 'enc2'), { kernel: 2 });
  h = cbr(b.upsampleNearest(h, 2), 32, 'dec2');
  h = b.sigmoid(b.conv(b.upsampleNearest(h, 2), { out: 1, kernel: 3, name: 'dec1' }));
  b.output(h, 'reconstruction');
  return b.build();
}

function modelGraph(name: string): Graph {
  if (name === 'ae') return aeUpsample();
  return buildArchitecture(name, { seed: 1 });
}

function isParam(g: Graph, name: string): boolean {
  return g.initializers.get(name)?.dataType === DataType.FLOAT && !/running_(mean|var)$/.test(name) && g.nodes.some((n) => n.opType !== 'Reshape' && n.inputs.includes(name));
}

/** Forward + training BN + mean loss + gradients; with `sgd`, also p − lr·g for each parameter, parameters as inputs. */
function trainingGraph(model: Graph, sgd: boolean): { graph: Graph; params: string[]; updates: Map<string, string> } {
  const classifier = model.outputs.some((o) => o.name === 'logits');
  const bn = toTrainingBatchNorm(model);
  const loss = classifier ? appendCrossEntropy(bn.graph, 'logits') : appendMse(bn.graph, 'reconstruction', 'input');
  const g = loss.graph;
  g.nodes.push({ name: 'loss_mean', opType: 'ReduceMean', inputs: [loss.loss], outputs: ['loss_mean'], attrs: { keepdims: attr.int(0) } });
  const params = [...g.initializers.keys()].filter((p) => isParam(model, p));
  const r = buildGradientGraph({ graph: g, loss: 'loss_mean', wrt: params });
  const out = r.graph;
  const updates = new Map<string, string>();
  if (sgd) {
    out.initializers.set('sgd/lr', floatTensor([], [0.01]));
    for (const p of params) {
      const t = out.initializers.get(p)!;
      out.initializers.delete(p);
      out.inputs.push({ name: p, dataType: DataType.FLOAT, shape: [...t.dims] });
      out.nodes.push({ name: `sgd/${p}/mul`, opType: 'Mul', inputs: [r.gradients.get(p)!, 'sgd/lr'], outputs: [`sgd/${p}/step`], attrs: {} });
      out.nodes.push({ name: `sgd/${p}/sub`, opType: 'Sub', inputs: [p, `sgd/${p}/step`], outputs: [`${p}.next`], attrs: {} });
      updates.set(p, `${p}.next`);
    }
    out.outputs = [{ name: 'loss_mean', dataType: DataType.FLOAT, shape: [] }, ...params.map((p) => ({ name: `${p}.next`, dataType: DataType.FLOAT })), ...bn.runningStats.map((s) => ({ name: s.updated, dataType: DataType.FLOAT }))];
  } else {
    out.outputs = out.outputs.filter((o) => o.name === 'loss_mean' || o.name.startsWith('grad_') || bn.runningStats.some((s) => s.updated === o.name));
  }
  return { graph: out, params, updates };
}

async function modelBench(name: string): Promise<void> {
  const model = modelGraph(name);
  const shape = model.inputs[0].shape!.map((d) => (typeof d === 'number' ? d : BATCH));
  const input = random(shape, 7);
  const classes = model.outputs[0].shape?.[1];
  const feeds: Record<string, ort.Tensor> = { input };
  if (model.outputs.some((o) => o.name === 'logits')) {
    const rng = new Rng(9);
    feeds.labels = new ort.Tensor('int64', BigInt64Array.from({ length: BATCH }, () => BigInt(rng.int(Number(classes)))), [BATCH]);
  }
  const fb = trainingGraph(model, false);
  const st = trainingGraph(model, true);
  const sessions = await Promise.all([cloneGraph(model), fb.graph, st.graph].map((g) => createSession(g, { intraOpThreads: threads })));
  let params: Record<string, ort.Tensor> = {};
  for (const p of st.params) {
    const t = model.initializers.get(p)!;
    params[p] = new ort.Tensor('float32', (t.data as Float32Array).slice(), t.dims);
  }
  const [forward, backward, step] = await timeAll([
    () => sessions[0].run({ input }),
    () => sessions[1].run(feeds),
    async () => {
      const out = await sessions[2].run({ ...feeds, ...params });
      const next: Record<string, ort.Tensor> = {};
      for (const p of st.params) next[p] = out[st.updates.get(p)!];
      params = next;
    },
  ]);
  for (const s of sessions) await s.release();
  const nodes = fb.graph.nodes.length - model.nodes.length;
  console.log(`\n${name} (batch ${BATCH}, ${st.params.length} parameter tensors, ${nodes} nodes added by loss + training BN + backward)`);
  console.log(`  forward                    ${fmt(forward)}`);
  console.log(`  forward + backward         ${fmt(backward)}`);
  console.log(`  training step (SGD, fused) ${fmt(step)}`);
  console.log(`  step / forward             ${(step.median / forward.median).toFixed(2)}× (median), ${(step.min / forward.min).toFixed(2)}× (min)`);
}

async function main(): Promise<void> {
  console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}, CPU, intra-op threads ${threads || 'default'}, ${clock} clock, ${iters} timed runs each`);
  if (parts.includes('convs')) {
    for (const sh of convShapes) await convStudy(sh);
  }
  if (parts.includes('models')) for (const m of models) await modelBench(m);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
