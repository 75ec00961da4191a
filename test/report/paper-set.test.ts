import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel, loadModel } from '../../src/onnx/io';
import { IDENTITY_NORMALISATION, canonicalClassifier, composeDefended } from '../../src/pipeline/compose';
import { assertEncoderFrozen } from '../../src/pipeline/frozen';
import { STAGE2_RECIPE_METADATA } from '../../src/pipeline/recipes/recipe';
import { ADVERSARIAL_FS_STAGE2, PAPER_STAGE2, TRADES_STAGE2, stage2Record } from '../../src/pipeline/default-set';
import { trainedRecord } from '../../src/pipeline/train-s2snet';
import { ADV_FS_SET_DIR, PAPER_SET_DIR, SERVED_SET_DIR, SetManifest, TRADES_SET_DIR, advFsSetManifest, paperSetManifest, servedSetManifest, tradesSetManifest } from './paper-set';

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * A kept S2SNet: its bytes are the manifest's, its encoder the served autoencoder's, and the
 * manifest's defended graph is it composed with the served classifier. Returns the graph.
 */
function checkKeptS2SNet(dir: string, kept: SetManifest) {
  expect(sha(readFileSync(join(dir, 's2snet.onnx')))).toBe(kept.files.s2snet.sha256);
  const s2snet = loadModel(join(dir, 's2snet.onnx'));
  const classifier = loadModel(join(SERVED_SET_DIR, 'classifier.onnx'));
  expect(sha(encodeModel(composeDefended(s2snet, canonicalClassifier(classifier, IDENTITY_NORMALISATION))))).toBe(kept.files.defended.sha256);
  assertEncoderFrozen(loadModel(join(SERVED_SET_DIR, 'autoencoder.onnx')), s2snet);
  return s2snet;
}

describe('the paper-recipe default set (1.2.0) that the earlier reports evaluated', () => {
  const paper = paperSetManifest();
  const served = servedSetManifest();

  it('is the same set but for its S2SNet: classifier, autoencoder and smoothing denoiser are the served files', () => {
    expect(paper.name).toBe(served.name);
    expect(paper.version).toBe('1.2.0');
    for (const key of ['classifier', 'autoencoder', 'smoothing']) {
      expect(paper.files[key].sha256).toBe(served.files[key].sha256);
      expect(sha(readFileSync(join(SERVED_SET_DIR, served.files[key].path)))).toBe(paper.files[key].sha256);
    }
    expect(paper.files.s2snet.sha256).not.toBe(served.files.s2snet.sha256);
  });

  it('keeps its S2SNet byte for byte; its defended graph is that S2SNet composed with the served classifier', () => {
    const s2snet = checkKeptS2SNet(PAPER_SET_DIR, paper);
    // Trained before stage-2 recipes were recorded in the graph; the manifest records the paper's stage 2, as the recipe keeps it.
    expect(s2snet.metadata?.[STAGE2_RECIPE_METADATA]).toBeUndefined();
    expect((paper.metrics as unknown as { training: { s2snet: unknown } }).training.s2snet).toEqual({ loss: 'ce', trained: trainedRecord(), optimizer: 'adamw', schedule: 'cosine, 5% linear warm-up', ...PAPER_STAGE2.settings });
  });
});

describe('the 1.3.0 default set (adversarial-fs stage 2) that the reports made while it was served evaluated', () => {
  const kept = advFsSetManifest();
  const served = servedSetManifest();

  it('is the served set but for its S2SNet and the graphs and figures that follow from it', () => {
    expect([kept.name, kept.version, served.version]).toEqual([served.name, '1.3.0', '1.5.0']);
    for (const key of ['classifier', 'autoencoder', 'smoothing']) expect(kept.files[key].sha256).toBe(served.files[key].sha256);
    for (const key of ['s2snet', 'defended']) expect(kept.files[key].sha256).not.toBe(served.files[key].sha256);
    expect([kept.metrics.top1.classifier, kept.metrics.top1.autoencoder]).toEqual([served.metrics.top1.classifier, served.metrics.top1.autoencoder]);
  });

  it('keeps its S2SNet byte for byte, trained as ADVERSARIAL_FS_STAGE2 records; its defended graph is that S2SNet composed with the served classifier', () => {
    const s2snet = checkKeptS2SNet(ADV_FS_SET_DIR, kept);
    const recorded = (kept.metrics as unknown as { training: { s2snet: Record<string, unknown> } }).training.s2snet;
    expect(recorded).toEqual(stage2Record(ADVERSARIAL_FS_STAGE2));
    expect(JSON.parse(s2snet.metadata![STAGE2_RECIPE_METADATA])).toMatchObject({ recipe: recorded.recipe, steps: 1800, batchSize: 64 });
  });
});

describe('the 1.4.0 default set (TRADES, encoder frozen) that the reports made while it was served evaluated', () => {
  const kept = tradesSetManifest();
  const served = servedSetManifest();

  it('is the served set but for its S2SNet and the graphs and figures that follow from it', () => {
    expect([kept.name, kept.version, served.version]).toEqual([served.name, '1.4.0', '1.5.0']);
    for (const key of ['classifier', 'autoencoder', 'smoothing']) expect(kept.files[key].sha256).toBe(served.files[key].sha256);
    for (const key of ['s2snet', 'defended']) expect(kept.files[key].sha256).not.toBe(served.files[key].sha256);
    expect([kept.metrics.top1.classifier, kept.metrics.top1.autoencoder]).toEqual([served.metrics.top1.classifier, served.metrics.top1.autoencoder]);
  });

  it('keeps its S2SNet byte for byte, trained as TRADES_STAGE2 records (the served recipe but for the encoder); its defended graph is that S2SNet composed with the served classifier', () => {
    const s2snet = checkKeptS2SNet(TRADES_SET_DIR, kept);
    const recorded = (kept.metrics as unknown as { training: { s2snet: Record<string, unknown> } }).training.s2snet;
    expect(recorded).toEqual(stage2Record(TRADES_STAGE2));
    expect(JSON.parse(s2snet.metadata![STAGE2_RECIPE_METADATA])).toMatchObject({ recipe: recorded.recipe, steps: 3600, batchSize: 32, trained: trainedRecord(false) });
  });
});
