import { buildArchitecture } from '../../src/architectures/architectures';
import { countParameters } from '../../src/architectures/parameters';
import { DECODER_PREFIX, ENCODER_PREFIX } from '../../src/architectures/segnet';
import { randomImages, range, saveAndLoad } from './helpers';

// The original SegNet: one build (~29M weights), one batch-1 run on CPU.
describe('segnet (VGG-16 encoder, 224×224 RGB)', () => {
  const g = buildArchitecture('segnet');

  test('13 encoder convs in 5 stages of 64…512 channels, 13 decoder convs', () => {
    const convs = g.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.filter((n) => n.name.startsWith(ENCODER_PREFIX)).length).toBe(13);
    expect(convs.filter((n) => n.name.startsWith(DECODER_PREFIX)).length).toBe(13);
    expect(g.nodes.filter((n) => n.opType === 'MaxPool').length).toBe(5);
    expect(g.nodes.filter((n) => n.opType === 'MaxUnpool').length).toBe(5);
    expect(g.initializers.get('encoder.conv5_3.weight')!.dims).toEqual([512, 512, 3, 3]);
    expect(g.initializers.get('decoder.conv1_1.weight')!.dims).toEqual([3, 64, 3, 3]);
  });

  test('encoder = VGG-16 feature extractor (14,714,688 conv parameters) + its BatchNorm', () => {
    const bnChannels = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512;
    expect(countParameters(g, { prefix: ENCODER_PREFIX })).toBe(14_714_688 + 2 * bnChannels);
    expect(countParameters(g)).toBe(29_444_739);
  });

  test('reconstruction of a [1,3,224,224] image has its shape, values in [0,1]', async () => {
    const s = await saveAndLoad(g);
    try {
      const out = await s.run({ input: randomImages([1, 3, 224, 224]) });
      expect(out.reconstruction.dims).toEqual([1, 3, 224, 224]);
      const [lo, hi] = range(out.reconstruction.data as Float32Array);
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
    } finally {
      await s.release();
    }
  });
});
