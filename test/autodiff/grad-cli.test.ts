import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import { GraphBuilder } from '../../src/onnx/builder';
import { DataType } from '../../src/onnx/dtype';
import { Graph, attr, emptyGraph } from '../../src/onnx/graph';
import { saveModel } from '../../src/onnx/io';
import { TensorData, floatTensor, int64Tensor, int64Vector } from '../../src/onnx/tensor';
import { createSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';
import { linearizeKinks, randomTensor } from './gradcheck';

/**
 * `s2s grad` end to end: build a classifier, save it, run the CLI, load the
 * written graph in ORT and compare its input gradient with central
 * differences of Σ cross-entropy (computed in float64 from the model's
 * logits, with the ReLU/MaxPool kinks frozen at the evaluation point).
 */
let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 's2s-grad-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    const code = await main(['node', 's2s', ...args]);
    return { code, out, err };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

function crossEntropySum(logits: Float32Array, k: number, labels: number[]): number {
  let s = 0;
  labels.forEach((y, n) => {
    const row = Array.from(logits.slice(n * k, n * k + k));
    const m = Math.max(...row);
    s += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[y];
  });
  return s;
}

/** Checks G's outputs and its input gradient against finite differences through the (linearised) model M. */
async function checkGradGraph(model: Graph, gPath: string, input: TensorData, labels: number[], inputName = 'input') {
  const k = Number(model.outputs[0].shape![1]);
  const g = await createSession(gPath);
  expect(g.inputNames).toEqual([inputName, 'labels']);
  expect(g.outputNames).toEqual([model.outputs[0].name, 'loss', `grad_${inputName}`]);
  const out = await g.run({ [inputName]: input, labels: int64Tensor([labels.length], labels) });
  const logits = out[model.outputs[0].name].data as Float32Array;
  expect(out.loss.type).toBe('float32');
  expect(out.loss.dims).toEqual([labels.length]);
  const lossSum = Array.from(out.loss.data as Float32Array).reduce((a, b) => a + b, 0);
  expect(lossSum).toBeCloseTo(crossEntropySum(logits, k, labels), 4);
  const grad = out[`grad_${inputName}`];
  expect(grad.dims).toEqual(input.dims);

  const lin = await createSession(await linearizeKinks(model, { [inputName]: input }));
  const loss = async (x: Float32Array) => crossEntropySum((await lin.run({ [inputName]: { ...input, data: x } }))[model.outputs[0].name].data as Float32Array, k, labels);
  const rng = new Rng(3);
  const gd = grad.data as Float32Array;
  const xd = input.data as Float32Array;
  let diff = 0, norm = 0;
  for (const i of rng.permutation(xd.length).slice(0, 12)) {
    const eps = 1e-2;
    const p = xd.slice(); p[i] += eps;
    const m = xd.slice(); m[i] -= eps;
    const fd = ((await loss(p)) - (await loss(m))) / (2 * eps);
    diff += (fd - gd[i]) ** 2;
    norm += fd * fd;
  }
  expect(Math.sqrt(diff / norm)).toBeLessThan(1e-3);
}

test('s2s grad on a classifier built here: contract and gradient', async () => {
  const b = new GraphBuilder('cnn', { seed: 21 });
  const x = b.input('input', ['N', 3, 12, 12]);
  let h = b.relu(b.batchNorm(b.conv(x, { out: 6, kernel: 3 })));
  h = b.maxPool(h, { kernel: 3, stride: 2, pad: 1 });
  h = b.relu(b.conv(h, { out: 8, kernel: 3, stride: 2 }));
  b.output(b.linear(b.flatten(b.globalAvgPool(h)), { out: 5 }), 'logits');
  const model = b.build();
  const mPath = join(dir, 'cnn.onnx');
  const gPath = join(dir, 'cnn_grad.onnx');
  saveModel(model, mPath);
  const r = await runCli(['grad', '--model', mPath, '--loss', 'cross-entropy', '--out', gPath]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toContain('grad_input');
  await checkGradGraph(model, gPath, randomTensor(new Rng(5), [3, 3, 12, 12]), [4, 0, 2]);
});

/** The shape of a torch.onnx.export'ed classifier: opset 13, 'batch_size' axis, Constant nodes, Shape→Gather→Concat→Reshape flatten, Gemm transB, weights listed as inputs too. */
function torchStyleClassifier(): Graph {
  const rng = new Rng(8);
  const g = emptyGraph('torch_jit', 13);
  g.inputs.push({ name: 'x.1', dataType: DataType.FLOAT, shape: ['batch_size', 3, 8, 8] });
  const init = (name: string, t: TensorData) => {
    g.initializers.set(name, t);
    g.inputs.push({ name, dataType: t.dataType, shape: [...t.dims] });
  };
  init('conv.weight', randomTensor(rng, [4, 3, 3, 3], DataType.FLOAT, 0.4));
  init('conv.bias', randomTensor(rng, [4], DataType.FLOAT, 0.1));
  init('fc.weight', randomTensor(rng, [3, 36], DataType.FLOAT, 0.3));
  init('fc.bias', floatTensor([3]));
  const node = (opType: string, inputs: string[], outputs: string[], attrs = {}) => g.nodes.push({ name: `/${opType}_${g.nodes.length}`, opType, inputs, outputs, attrs });
  node('Conv', ['x.1', 'conv.weight', 'conv.bias'], ['/conv/Conv_output_0'], { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([1, 1]) });
  node('Relu', ['/conv/Conv_output_0'], ['/relu/Relu_output_0']);
  node('MaxPool', ['/relu/Relu_output_0'], ['/pool/MaxPool_output_0'], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([3, 3]), pads: attr.ints([0, 0, 1, 1]), ceil_mode: attr.int(0) });
  node('Shape', ['/pool/MaxPool_output_0'], ['/Shape_output_0']);
  node('Constant', [], ['/Constant_output_0'], { value: attr.tensor(int64Tensor([], [0])) });
  node('Gather', ['/Shape_output_0', '/Constant_output_0'], ['/Gather_output_0'], { axis: attr.int(0) });
  node('Constant', [], ['/Constant_1_output_0'], { value: attr.tensor(int64Vector([0])) });
  node('Unsqueeze', ['/Gather_output_0', '/Constant_1_output_0'], ['/Unsqueeze_output_0']);
  node('Constant', [], ['/Constant_2_output_0'], { value: attr.tensor(int64Vector([-1])) });
  node('Concat', ['/Unsqueeze_output_0', '/Constant_2_output_0'], ['/Concat_output_0'], { axis: attr.int(0) });
  node('Reshape', ['/pool/MaxPool_output_0', '/Concat_output_0'], ['/Reshape_output_0']);
  node('Gemm', ['/Reshape_output_0', 'fc.weight', 'fc.bias'], ['19'], { alpha: attr.float(1), beta: attr.float(1), transB: attr.int(1) });
  g.outputs.push({ name: '19', dataType: DataType.FLOAT, shape: ['batch_size', 3] });
  return g;
}

test('s2s grad on a PyTorch-style export (opset 13, dynamic batch, weights also listed as inputs)', async () => {
  const model = torchStyleClassifier();
  const mPath = join(dir, 'torch.onnx');
  const gPath = join(dir, 'torch_grad.onnx');
  saveModel(model, mPath);
  const r = await runCli(['grad', '--model', mPath, '--out', gPath]);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const g = await createSession(gPath);
  // Weights stay (overridable) initializers; only the image is differentiated.
  expect(g.outputNames).toEqual(['19', 'loss', 'grad_x.1']);
  const out = await g.run({ 'x.1': randomTensor(new Rng(1), [5, 3, 8, 8]), labels: int64Tensor([5], [0, 1, 2, 1, 0]) });
  expect(out['grad_x.1'].dims).toEqual([5, 3, 8, 8]);
  // Gradient check with the weights as initializers only (the model as a user would run it).
  const plain = { ...model, inputs: model.inputs.filter((v) => !model.initializers.has(v.name)) };
  const pPath = join(dir, 'torch_plain.onnx');
  const pgPath = join(dir, 'torch_plain_grad.onnx');
  saveModel(plain, pPath);
  expect((await runCli(['grad', '--model', pPath, '--out', pgPath])).code).toBe(0);
  await checkGradGraph(plain, pgPath, randomTensor(new Rng(2), [4, 3, 8, 8]), [2, 2, 0, 1], 'x.1');
});

test('s2s grad reports bad requests as one line, exit 2', async () => {
  const b = new GraphBuilder('two', { seed: 1 });
  const x = b.input('input', ['N', 4]);
  b.output(b.linear(x, { out: 3 }), 'a');
  b.output(b.linear(x, { out: 3 }), 'b');
  const mPath = join(dir, 'two.onnx');
  saveModel(b.build(), mPath);
  const several = await runCli(['grad', '--model', mPath, '--out', join(dir, 'x.onnx')]);
  expect(several.code).toBe(2);
  expect(several.err).toMatch(/^s2s: model 'two' has several outputs \(a, b\); name the logits with --logits\n$/);
  const loss = await runCli(['grad', '--model', mPath, '--logits', 'a', '--loss', 'hinge', '--out', join(dir, 'x.onnx')]);
  expect(loss.code).toBe(2);
  expect(loss.err).toContain("unknown loss 'hinge'");
  expect((await runCli(['grad', '--model', mPath, '--logits', 'b', '--out', join(dir, 'b.onnx')])).code).toBe(0);
});
