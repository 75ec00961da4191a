import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeModel, loadModel } from '../../src/onnx/io';
import { withoutPoolingIndices } from '../../scripts/segnet-without-indices';

/** The experiment's model (reports/fashion-mnist-ablation/screen-1000): nearest upsampling where the decoder unpooled by the encoder's indices. */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');

describe('scripts/segnet-without-indices', () => {
  it('replaces every MaxUnpool by a ×2 nearest Resize, keeps every weight, and the graph runs: a constant 2×2 block upsamples to itself', async () => {
    const before = loadModel(join(models, 'autoencoder.onnx'));
    const { graph, replaced } = withoutPoolingIndices(loadModel(join(models, 'autoencoder.onnx')));
    expect(replaced).toBe(2);
    expect(graph.nodes.filter((n) => n.opType === 'MaxUnpool')).toHaveLength(0);
    expect(graph.nodes.filter((n) => n.opType === 'Resize')).toHaveLength(2);
    for (const [name, t] of before.initializers) expect(graph.initializers.get(name)).toEqual(t);
    // the pools no longer emit indices nobody reads
    for (const n of graph.nodes.filter((x) => x.opType === 'MaxPool')) expect(n.outputs).toHaveLength(1);
    const s = await ort.InferenceSession.create(encodeModel(graph));
    const x = new Float32Array(784).map((_, i) => (i % 7) / 7);
    const out = await s.run({ input: new ort.Tensor('float32', x, [1, 1, 28, 28]) });
    const y = out[s.outputNames[0]];
    expect(y.dims).toEqual([1, 1, 28, 28]);
    expect((y.data as Float32Array).every(Number.isFinite)).toBe(true);
    await s.release();
  });

  it('refuses a graph without MaxUnpool', () => {
    expect(() => withoutPoolingIndices(loadModel(join(models, 'classifier.onnx')))).toThrow(/has no MaxUnpool/);
  });
});
