import { buildArchitecture } from '../../src/architectures/architectures';
import { countParameters } from '../../src/architectures/parameters';
import { randomImages, saveAndLoad } from './helpers';

// ImageNet-shaped: one build, one batch-1 run on CPU.
describe('resnet50 (torchvision layout)', () => {
  const g = buildArchitecture('resnet50');

  test('25,557,032 trained parameters, as torchvision.models.resnet50 reports', () => {
    expect(countParameters(g)).toBe(25_557_032);
  });

  test('stem, stage and head tensors carry torchvision names and shapes', () => {
    const dims = (n: string) => g.initializers.get(n)?.dims;
    expect(dims('conv1.weight')).toEqual([64, 3, 7, 7]);
    expect(dims('conv1.bias')).toBeUndefined();
    expect(dims('layer1.0.downsample.0.weight')).toEqual([256, 64, 1, 1]);
    expect(dims('layer2.0.conv2.weight')).toEqual([128, 128, 3, 3]);
    expect(dims('layer3.5.bn3.running_var')).toEqual([1024]);
    expect(dims('layer4.2.conv3.weight')).toEqual([2048, 512, 1, 1]);
    expect(dims('fc.weight')).toEqual([1000, 2048]);
    const stem = g.nodes.find((n) => n.name === 'conv1')!;
    expect(stem.attrs.strides).toEqual({ kind: 'ints', value: [2, 2] });
    const pool = g.nodes.find((n) => n.name === 'maxpool')!;
    expect(pool.attrs.kernel_shape).toEqual({ kind: 'ints', value: [3, 3] });
    expect(pool.attrs.strides).toEqual({ kind: 'ints', value: [2, 2] });
    expect(g.nodes.filter((n) => n.opType === 'Conv').length).toBe(53);
  });

  test('saves, loads in onnxruntime and maps [1,3,224,224] to logits [1,1000]', async () => {
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([['logits', ['N', 1000]]]);
    const s = await saveAndLoad(g);
    try {
      const out = await s.run({ input: randomImages([1, 3, 224, 224]) });
      expect(out.logits.dims).toEqual([1, 1000]);
      expect((out.logits.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await s.release();
    }
  });
});
