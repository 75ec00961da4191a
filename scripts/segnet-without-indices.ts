/**
 * An experiment's model, not part of the service: a SegNet autoencoder whose
 * decoder upsamples by nearest-neighbour (Resize ×2) where it had MaxUnpool
 * with the encoder's pooling indices. Those indices carry where each maximum
 * was, so a perturbation of the input reaches the decoder's output through
 * them whatever the decoder learns; without them the decoder sees only the
 * pooled values. Encoder and decoder weights are kept as they were, the
 * encoder byte for byte; the shape computations that fed MaxUnpool and the
 * pools' indices outputs are dropped once nothing reads them. Stage 2 then
 * trains the decoder for this topology
 * (reports/fashion-mnist-ablation/screen-1000).
 *
 *   npx tsx scripts/segnet-without-indices.ts IN.onnx OUT.onnx
 */
import { Graph, attr } from '../src/onnx/graph';
import { loadModel, saveModel } from '../src/onnx/io';
import { floatTensor } from '../src/onnx/tensor';

export function withoutPoolingIndices(g: Graph): { graph: Graph; replaced: number } {
  const scales = 'noidx.scales';
  let replaced = 0;
  for (const node of g.nodes) {
    if (node.opType !== 'MaxUnpool') continue;
    const [k, s] = [node.attrs.kernel_shape, node.attrs.strides];
    const twoByTwo = (a: typeof k) => a?.kind === 'ints' && a.value.length === 2 && a.value.every((v) => v === 2);
    if (!twoByTwo(k) || !twoByTwo(s)) throw new Error(`${node.name}: only 2×2 unpooling with stride 2 is replaced`);
    node.opType = 'Resize';
    node.inputs = [node.inputs[0], '', scales];
    node.attrs = { mode: attr.string('nearest') };
    replaced++;
  }
  if (replaced === 0) throw new Error(`graph '${g.name}' has no MaxUnpool`);
  g.initializers.set(scales, floatTensor([4], [1, 1, 2, 2]));
  // Drop what only fed MaxUnpool (its output-shape computations), then the indices outputs nobody reads.
  for (;;) {
    const read = new Set([...g.nodes.flatMap((n) => n.inputs), ...g.outputs.map((o) => o.name)]);
    const kept = g.nodes.filter((n) => n.outputs.some((o) => o && read.has(o)));
    if (kept.length === g.nodes.length) break;
    g.nodes = kept;
  }
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const n of g.nodes) if (n.opType === 'MaxPool' && n.outputs[1] && !read.has(n.outputs[1])) n.outputs = [n.outputs[0]];
  return { graph: g, replaced };
}

if (require.main === module) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error('usage: segnet-without-indices IN.onnx OUT.onnx');
    process.exit(2);
  }
  try {
    const { graph, replaced } = withoutPoolingIndices(loadModel(input));
    saveModel(graph, output);
    console.log(`${output}: ${replaced} MaxUnpool → nearest Resize, ${graph.nodes.length} nodes`);
  } catch (e) {
    console.error(`segnet-without-indices: ${(e as Error).message.split('\n')[0]}`);
    process.exit(2);
  }
}
