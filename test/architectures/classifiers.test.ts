import { ARCHITECTURES, architectureNames, buildArchitecture } from '../../src/architectures/architectures';
import { countParameters, parameterNames } from '../../src/architectures/parameters';
import { Graph } from '../../src/onnx/graph';
import { UserError } from '../../src/util/errors';
import { randomImages, saveAndLoad } from './helpers';

const SMALL_CLASSIFIERS = ['resnet-small', 'vgg-small', 'alexnet-small', 'mlp'];

// Weight initialisation dominates these tests' time, so each default graph is built once.
const built = new Map<string, Graph>();
const defaultGraph = (name: string): Graph => {
  if (!built.has(name)) built.set(name, buildArchitecture(name, { seed: 1 }));
  return built.get(name)!;
};

describe('registry', () => {
  test('names, kinds and at least four small classifier families', () => {
    expect(architectureNames('autoencoder')).toEqual(['segnet', 'segnet-small']);
    expect(architectureNames('classifier')).toEqual(expect.arrayContaining([...SMALL_CLASSIFIERS, 'resnet50']));
    for (const n of SMALL_CLASSIFIERS) expect(ARCHITECTURES.get(n)!.defaults).toEqual({ channels: 1, height: 28, width: 28, classes: 10 });
  });

  test('unknown names and bad options are UserErrors that say what is known or wrong', () => {
    expect(() => buildArchitecture('lenet')).toThrow(UserError);
    expect(() => buildArchitecture('lenet')).toThrow(/unknown architecture 'lenet' \(known: segnet, segnet-small, resnet-small/);
    expect(() => buildArchitecture('mlp', { classes: 1 })).toThrow(/classes must be an integer ≥ 2/);
    expect(() => buildArchitecture('alexnet-small', { height: 12, width: 12 })).toThrow(/too small for three 3×3\/2 pools/);
    expect(() => buildArchitecture('vgg-small', { height: 4, width: 4 })).toThrow(/3 pooling stages do not fit a 4×4 input/);
    expect(() => buildArchitecture('mlp', { channels: 0 })).toThrow(/channels must be a positive integer/);
  });
});

describe.each(SMALL_CLASSIFIERS)('%s', (name) => {
  test('builds, saves, loads in onnxruntime and maps [2,1,28,28] to logits [2,10]', async () => {
    const g = defaultGraph(name);
    expect(g.inputs.map((i) => [i.name, i.shape])).toEqual([['input', ['N', 1, 28, 28]]]);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([['logits', ['N', 10]]]);
    const s = await saveAndLoad(g);
    try {
      const out = await s.run({ input: randomImages([2, 1, 28, 28]) });
      expect(Object.keys(out)).toEqual(['logits']);
      expect(out.logits.dims).toEqual([2, 10]);
      const logits = out.logits.data as Float32Array;
      expect(logits.every(Number.isFinite)).toBe(true);
      // Two different images give different logits: the net is not constant.
      expect(logits.slice(0, 10)).not.toEqual(logits.slice(10, 20));
    } finally {
      await s.release();
    }
  });

  test('same seed, same weights; another seed, other weights', () => {
    const a = defaultGraph(name);
    const b = buildArchitecture(name, { seed: 1 });
    const c = buildArchitecture(name, { seed: 2 });
    const w = parameterNames(a).find((n) => n.endsWith('.weight'))!;
    expect(b.initializers.get(w)!.data).toEqual(a.initializers.get(w)!.data);
    expect(c.initializers.get(w)!.data).not.toEqual(a.initializers.get(w)!.data);
  });

  test('other geometry and class count: RGB 32×32, 5 classes', async () => {
    const g = buildArchitecture(name, { channels: 3, height: 32, width: 32, classes: 5 });
    const s = await saveAndLoad(g);
    try {
      const out = await s.run({ input: randomImages([2, 3, 32, 32]) });
      expect(out.logits.dims).toEqual([2, 5]);
    } finally {
      await s.release();
    }
  });
});

test('parameter counts of the small classifiers (running statistics excluded)', () => {
  const counts = Object.fromEntries(SMALL_CLASSIFIERS.map((n) => [n, countParameters(defaultGraph(n))]));
  // mlp: 784·512+512 + 512·256+256 + 256·10+10, by hand.
  expect(counts.mlp).toBe(784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
  // ResNet-20 on one input channel: the CIFAR count (272,474) less 2·16·9 stem weights for the two missing channels.
  expect(counts['resnet-small']).toBe(272474 - 2 * 16 * 9);
  expect(counts['vgg-small']).toBeGreaterThan(100_000);
  expect(counts['alexnet-small']).toBeGreaterThan(counts['vgg-small']);
});
