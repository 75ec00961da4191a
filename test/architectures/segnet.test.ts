import { buildArchitecture } from '../../src/architectures/architectures';
import { countParameters, parameterNames } from '../../src/architectures/parameters';
import { DECODER_PREFIX, ENCODER_PREFIX, buildSegNet } from '../../src/architectures/segnet';
import { randomImages, range, saveAndLoad } from './helpers';

describe('segnet-small (28×28 grey)', () => {
  const g = buildArchitecture('segnet-small', { seed: 1 });

  test('input and reconstruction have the same shape; output in [0,1]', async () => {
    expect(g.inputs.map((i) => [i.name, i.shape])).toEqual([['input', ['N', 1, 28, 28]]]);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([['reconstruction', ['N', 1, 28, 28]]]);
    const s = await saveAndLoad(g);
    try {
      const out = await s.run({ input: randomImages([2, 1, 28, 28]) });
      expect(out.reconstruction.dims).toEqual([2, 1, 28, 28]);
      const [lo, hi] = range(out.reconstruction.data as Float32Array);
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
      expect(hi).toBeGreaterThan(lo);
    } finally {
      await s.release();
    }
  });

  test('every parameter is under encoder. or decoder.; the encoder has no decoder weights and vice versa', () => {
    const all = parameterNames(g, { runningStats: true });
    const enc = parameterNames(g, { prefix: ENCODER_PREFIX, runningStats: true });
    const dec = parameterNames(g, { prefix: DECODER_PREFIX, runningStats: true });
    expect(enc.length + dec.length).toBe(all.length);
    expect(enc).toEqual(expect.arrayContaining(['encoder.conv1_1.weight', 'encoder.bn1_1.running_var', 'encoder.conv2_2.weight']));
    expect(dec).toEqual(expect.arrayContaining(['decoder.conv2_2.weight', 'decoder.conv2_1.weight', 'decoder.conv1_1.weight', 'decoder.conv1_1.bias']));
    expect(g.initializers.get('decoder.conv1_1.weight')!.dims).toEqual([1, 32, 3, 3]);
    // The mirrored stage narrows at its last conv: 64 → 32 in stage 2.
    expect(g.initializers.get('decoder.conv2_1.weight')!.dims).toEqual([32, 64, 3, 3]);
  });

  test('decoder unpools with the encoder pools\' indices', () => {
    const pools = g.nodes.filter((n) => n.opType === 'MaxPool');
    const unpools = g.nodes.filter((n) => n.opType === 'MaxUnpool');
    expect(pools.map((n) => n.name)).toEqual(['encoder.pool1', 'encoder.pool2']);
    expect(unpools.map((n) => n.name)).toEqual(['decoder.unpool2', 'decoder.unpool1']);
    expect(unpools[0].inputs[1]).toBe(pools[1].outputs[1]);
    expect(unpools[1].inputs[1]).toBe(pools[0].outputs[1]);
    expect(g.nodes[g.nodes.length - 2].opType).toBe('Sigmoid');
  });

  test('parameter count: encoder and decoder by hand', () => {
    const conv = (cin: number, cout: number) => cin * cout * 9 + cout;
    const enc = conv(1, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + 2 * (32 + 32 + 64 + 64);
    const dec = conv(64, 64) + conv(64, 32) + conv(32, 32) + conv(32, 1) + 2 * (64 + 32 + 32);
    expect(countParameters(g, { prefix: ENCODER_PREFIX })).toBe(enc);
    expect(countParameters(g, { prefix: DECODER_PREFIX })).toBe(dec);
  });
});

describe('odd sizes round-trip through max-unpool', () => {
  test.each([
    [28, 28, 3], // 28 → 14 → 7 → 3 → 7 → 14 → 28
    [27, 20, 2], // odd height
  ])('%i×%i with %i stages', async (h, w, stages) => {
    const widths = [8, 8, 8].slice(0, stages);
    const g = buildSegNet({ name: 'segnet-odd', channels: 1, height: h, width: w, widths, convs: widths.map(() => 1), seed: 2 });
    expect(g.outputs[0].shape).toEqual(['N', 1, h, w]);
    const s = await saveAndLoad(g);
    try {
      const out = await s.run({ input: randomImages([2, 1, h, w]) });
      expect(out.reconstruction.dims).toEqual([2, 1, h, w]);
    } finally {
      await s.release();
    }
  });

  test('more stages than the image allows is a UserError', () => {
    expect(() => buildSegNet({ channels: 1, height: 28, width: 28, widths: [8, 8, 8, 8, 8], convs: [1, 1, 1, 1, 1] })).toThrow(
      /5 pooling stages do not fit a 28×28 input \(stage 5 sees 1×1\)/,
    );
    expect(() => buildSegNet({ channels: 1, height: 28, width: 28, widths: [8, 8], convs: [1] })).toThrow(/one conv count per stage/);
  });
});
