import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { cloneGraph } from '../../src/onnx/graph';
import { loadModel } from '../../src/onnx/io';
import { assembleModelSet } from '../../src/pipeline/assemble';
import { STAGE2_RECIPE_METADATA, encoderTrainedVariant } from '../../src/pipeline/recipes/recipe';
import { trainedRecord } from '../../src/pipeline/train-s2snet';
import { UserError } from '../../src/util/errors';

/**
 * `s2s train set` checks that the S2SNet kept its autoencoder's encoder, except
 * for an S2SNet whose recorded stage 2 is the --train-encoder variant.
 */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');
// 1.4.0's S2SNet (decoder trained, encoder the autoencoder's): the served one since 1.5.0 trains its encoder too.
const FROZEN_ENCODER_S2SNET = join(__dirname, '..', '..', 'reports', 'fashion-mnist-worst-case-1.4.0', 'models', 's2snet.onnx');
const data = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');

describe('assembling a set from an S2SNet whose encoder differs', () => {
  const classifier = loadModel(join(models, 'classifier.onnx'));
  const autoencoder = loadModel(join(models, 'autoencoder.onnx'));
  const s2snet = loadModel(FROZEN_ENCODER_S2SNET);
  const train = loadFashionMnist({ dir: data, split: 'train' });
  const test = loadFashionMnist({ dir: data, split: 'test' });
  // An encoder that moved: one of its tensors scaled.
  const moved = cloneGraph(s2snet);
  const name = [...moved.initializers.keys()].find((n) => n.startsWith('encoder.') && n.endsWith('weight'))!;
  const t = moved.initializers.get(name)!;
  moved.initializers.set(name, { ...t, data: Float32Array.from(t.data as Float32Array, (v) => v * 1.01) });
  const options = (s: typeof s2snet, dir: string) => ({
    dir,
    name: 'variant-check',
    version: '1.0.0',
    labels: Array.from({ length: 10 }, (_, i) => `c${i}`),
    classifier,
    autoencoder,
    s2snet: s,
    test,
    testName: 'fixture test',
    holdout: train,
    holdoutName: 'fixture train',
    limit: 16,
    quiet: true,
  });

  it('refuses it in one line when nothing records the variant', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2s-variant-'));
    try {
      expect(encoderTrainedVariant(moved)).toBe(false);
      const p = assembleModelSet(options(moved, dir));
      await expect(p).rejects.toBeInstanceOf(UserError);
      await expect(p).rejects.toThrow(/^S2SNet encoder differs from the autoencoder's in 1 tensors \(first: encoder\.[^)]*\): an S2SNet keeps its autoencoder's encoder unless its stage 2 recorded the --train-encoder variant; pass the autoencoder it was trained from$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('assembles it when its stage-2 record names the --train-encoder variant', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2s-variant-'));
    try {
      const variant = cloneGraph(moved);
      variant.metadata = { ...(variant.metadata ?? {}), [STAGE2_RECIPE_METADATA]: JSON.stringify({ recipe: 'paper-ce', trained: trainedRecord(true) }) };
      expect(encoderTrainedVariant(variant)).toBe(true);
      const a = await assembleModelSet(options(variant, dir));
      expect(a.result.s2snet?.psnrDb).toBeGreaterThan(10);
      expect(a.manifest.files.s2snet).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
