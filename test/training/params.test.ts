import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/onnx/builder';
import { composeGraphs } from '../../src/onnx/compose';
import { createSession } from '../../src/runtime/session';
import { parameterCandidates, parseNameList, selectParameters } from '../../src/training/params';
import { addReferenceBranch } from '../../src/training/reference';
import { Rng } from '../../src/util/random';

/** conv+BN encoder, a clip (float constants that are not parameters), nearest upsampling, linear head. */
function net(seed = 1) {
  const b = new GraphBuilder('net', { seed });
  const x = b.input('input', ['N', 1, 8, 8]);
  let h = b.relu(b.batchNorm(b.conv(x, { out: 4, kernel: 3, name: 'encoder.conv1' }), { name: 'encoder.bn1' }));
  h = b.clip(h, 0, 6);
  h = b.upsampleNearest(b.maxPool(h, { kernel: 2 }), 2);
  h = b.conv(h, { out: 2, kernel: 3, name: 'decoder.conv1' });
  b.output(b.linear(b.flatten(h), { out: 3, name: 'head' }), 'logits');
  return b.build();
}

describe('parameter selection', () => {
  it("'all' is the weights of parametric layers, not constants or running statistics", () => {
    expect(parameterCandidates(net())).toEqual([
      'encoder.conv1.weight',
      'encoder.conv1.bias',
      'encoder.bn1.weight',
      'encoder.bn1.bias',
      'decoder.conv1.weight',
      'decoder.conv1.bias',
      'head.weight',
      'head.bias',
    ]);
  });

  it('PyTorch-style Linear (MatMul + Add) counts its bias', () => {
    const b = new GraphBuilder('mm', { seed: 2 });
    const x = b.input('input', ['N', 4]);
    const w = b.param('fc.weight_t', [4, 3], 'glorot', { fanIn: 4, fanOut: 3 });
    const bias = b.param('fc.bias', [3], 'zeros');
    const scale = b.scalar(2, 'temperature');
    b.output(b.div(b.add(b.matmul(x, w), bias), scale), 'logits');
    expect(parameterCandidates(b.build())).toEqual(['fc.weight_t', 'fc.bias']);
  });

  it('names and patterns, minus frozen', () => {
    const g = net();
    expect(selectParameters(g, ['decoder.*', 'head.weight']).trainable).toEqual(['decoder.conv1.weight', 'decoder.conv1.bias', 'head.weight']);
    const s = selectParameters(g, 'all', ['encoder.*', 'head.*']);
    expect(s.trainable).toEqual(['decoder.conv1.weight', 'decoder.conv1.bias']);
    expect(s.frozen).toEqual(['encoder.conv1.weight', 'encoder.conv1.bias', 'encoder.bn1.weight', 'encoder.bn1.bias', 'head.weight', 'head.bias']);
    expect(parseNameList(['a, b', 'c,,'])).toEqual(['a', 'b', 'c']);
  });

  it('typos and impossible choices are user errors', () => {
    const g = net();
    expect(() => selectParameters(g, ['decodr.*'])).toThrow(/--requires-grad 'decodr.\*' matches no parameter of 'net'/);
    expect(() => selectParameters(g, 'all', ['nothing'])).toThrow(/--frozen 'nothing' matches no parameter/);
    expect(() => selectParameters(g, ['encoder.bn1.running_mean'])).toThrow(/running statistic/);
    expect(() => selectParameters(g, ['head.*'], ['head.*'])).toThrow(/no trainable parameters left/);
  });
});

describe('reference branch for the label-free KL loss', () => {
  it('computes the frozen classifier on the clean input and shares its weights', async () => {
    const cls = new GraphBuilder('f', { seed: 5 });
    cls.output(cls.linear(cls.flatten(cls.input('input', ['N', 1, 8, 8])), { out: 3, name: 'fc' }), 'logits');
    const f = cls.build();
    const ae = new GraphBuilder('s', { seed: 6 });
    ae.output(ae.sigmoid(ae.conv(ae.input('input', ['N', 1, 8, 8]), { out: 1, kernel: 3, name: 'dec' })), 'reconstruction');
    const fs = composeGraphs(ae.build(), f, { connect: [['reconstruction', 'input']], shareIdenticalInitializers: true }).graph;

    const { graph, reference } = addReferenceBranch(fs, f);
    const extra = [...graph.initializers.keys()].filter((k) => !fs.initializers.has(k));
    expect(extra).toEqual([]);
    // A tensor that trains is never shared, even when its bytes are identical (zero biases often are).
    const guarded = addReferenceBranch(fs, f, { doNotShare: new Set(['fc.bias']) });
    expect([...guarded.graph.initializers.keys()].filter((k) => !fs.initializers.has(k))).toEqual(['reference/fc.bias']);
    graph.outputs.push({ name: reference, dataType: 1, shape: ['N', 3] });

    const rng = new Rng(9);
    const x = Float32Array.from({ length: 2 * 64 }, () => rng.uniform());
    const sAll = await createSession(graph, { provider: 'cpu' });
    const sF = await createSession(f, { provider: 'cpu' });
    const out = await sAll.run({ input: new ort.Tensor('float32', x, [2, 1, 8, 8]) });
    const direct = await sF.run({ input: new ort.Tensor('float32', x, [2, 1, 8, 8]) });
    expect(Array.from(out[reference].data as Float32Array)).toEqual(Array.from(direct.logits.data as Float32Array));
    expect(out[reference].data).not.toEqual(out.logits.data);
  });
});
