import { DataType } from '../../onnx/dtype';
import { Graph, NameScope, Node, attr, cloneGraph } from '../../onnx/graph';
import { int64Tensor, int64Vector } from '../../onnx/tensor';
import { renameValue } from '../../training/graphEdit';
import { Dataset } from '../../training/dataset';

/**
 * TRADES (Zhang et al. 2019) for stage 2 needs each adversarial example x′
 * beside its clean image x in the same step: CE(f(s(x)), y) + β·KL(f(s(x)) ‖
 * f(s(x′))). The trainer feeds one image tensor, so a training row here is a
 * pair stacked on the channel axis — [x′; x] as [2C, H, W] — and the model
 * unstacks it: both halves go through f ∘ s as one batch of 2N (the
 * decoder's training-form BatchNorm sees clean and adversarial images
 * together), and the model's outputs are f(s(x)) as `logits` and f(s(x′))
 * as `logits_adv`. Held-out evaluation feeds pairs (x, x), where the KL is 0
 * and the loss is the clean CE.
 */
export const ADVERSARIAL_LOGITS = 'logits_adv';

/** `model` (input `input` [N, C, H, W], output `logits` [N, K]) taking pairs [N, 2C, H, W] instead. */
export function pairedModel(model: Graph, channels: number, classes: number): Graph {
  const g = cloneGraph(model);
  const input = g.inputs.find((v) => v.name === 'input');
  if (!input) throw new Error(`pairedModel: '${g.name}' has no input 'input'`);
  if (!g.outputs.some((o) => o.name === 'logits')) throw new Error(`pairedModel: '${g.name}' has no output 'logits'`);
  const scope = new NameScope(g);
  const batch = scope.fresh('pairs/batch');
  const both = scope.fresh('pairs/logits');
  renameValue(g, 'input', batch);
  renameValue(g, 'logits', both);
  const [n, , h, w] = input.shape ?? ['N', channels, 0, 0];
  g.inputs = [{ name: 'input', dataType: DataType.FLOAT, shape: [n, 2 * channels, h, w] }, ...g.inputs.filter((v) => v.name !== batch)];
  const constant = (name: string, t: ReturnType<typeof int64Vector>) => {
    const c = scope.fresh(name);
    g.initializers.set(c, t);
    return c;
  };
  const axis1 = constant('pairs/axis1', int64Vector([1]));
  const adv = scope.fresh('pairs/adversarial');
  const clean = scope.fresh('pairs/clean');
  const halves = scope.fresh('pairs/halves');
  const front: Node[] = [
    { name: scope.fresh('pairs/SliceAdversarial'), opType: 'Slice', inputs: ['input', constant('pairs/start0', int64Vector([0])), constant('pairs/endC', int64Vector([channels])), axis1], outputs: [adv], attrs: {} },
    { name: scope.fresh('pairs/SliceClean'), opType: 'Slice', inputs: ['input', constant('pairs/startC', int64Vector([channels])), constant('pairs/end2C', int64Vector([2 * channels])), axis1], outputs: [clean], attrs: {} },
    // adversarial rows first, then clean: the same order the logits are split back in
    { name: scope.fresh('pairs/Concat'), opType: 'Concat', inputs: [adv, clean], outputs: [batch], attrs: { axis: attr.int(0) } },
  ];
  const back: Node[] = [
    { name: scope.fresh('pairs/Reshape'), opType: 'Reshape', inputs: [both, constant('pairs/shape', int64Vector([2, -1, classes]))], outputs: [halves], attrs: {} },
    { name: scope.fresh('pairs/GatherAdversarial'), opType: 'Gather', inputs: [halves, constant('pairs/first', int64Tensor([], [0]))], outputs: [ADVERSARIAL_LOGITS], attrs: { axis: attr.int(0) } },
    { name: scope.fresh('pairs/GatherClean'), opType: 'Gather', inputs: [halves, constant('pairs/second', int64Tensor([], [1]))], outputs: ['logits'], attrs: { axis: attr.int(0) } },
  ];
  g.nodes = [...front, ...g.nodes, ...back];
  g.valueInfo.delete(both);
  g.outputs = [
    { name: 'logits', dataType: DataType.FLOAT, shape: [n, classes] },
    { name: ADVERSARIAL_LOGITS, dataType: DataType.FLOAT, shape: [n, classes] },
  ];
  g.name = `${model.name}_pairs`;
  return g;
}

/**
 * Rows [x′; x] from `adversarial` (x′, one per index, in the same order) and
 * `clean` (x); without `adversarial`, (x, x).
 */
export function pairedDataset(clean: Dataset, adversarial?: Dataset & { release?(): Promise<void> }): Dataset & { release(): Promise<void> } {
  const [c, h, w] = clean.shape;
  const per = c * h * w;
  return {
    size: clean.size,
    shape: [2 * c, h, w],
    async get(indices: number[]) {
      const x = await clean.get(indices);
      const xa = adversarial ? (await adversarial.get(indices)).images : x.images;
      const images = new Float32Array(indices.length * 2 * per);
      for (let i = 0; i < indices.length; i++) {
        images.set(xa.subarray(i * per, (i + 1) * per), 2 * i * per);
        images.set(x.images.subarray(i * per, (i + 1) * per), (2 * i + 1) * per);
      }
      return { images, labels: x.labels };
    },
    release: async () => adversarial?.release?.(),
  };
}
