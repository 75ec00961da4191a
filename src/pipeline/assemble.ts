import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Dataset } from '../training/dataset';
import { Graph } from '../onnx/graph';
import { saveModel } from '../onnx/io';
import { DefenceStage, Manifest, NoiseKind, ResizeFit } from '../models/manifest';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { IDENTITY_NORMALISATION, Normalisation, canonicalClassifier, composeDefended, imageGeometry } from './compose';
import { EvalResult, detectionScores, evaluate } from './evaluate';
import { assertEncoderFrozen } from './frozen';
import { encoderTrainedVariant } from './recipes/recipe';
import { writeManifest } from './model-set';
import { progressBar } from './progress';
import { flaggedRate, thresholdAt } from './scores';

/**
 * Turns trained graphs into a servable model set: writes classifier.onnx,
 * autoencoder.onnx, s2snet.onnx and defended.onnx (f ∘ s in one graph,
 * normalisation included), measures the metrics on the test set, calibrates
 * the detection threshold on held-out clean training images, and writes the
 * manifest with the sha256 of every file.
 */
export interface AssembleOptions {
  dir: string;
  name: string;
  version: string;
  description?: string;
  labels: string[];
  classifier: Graph;
  autoencoder: Graph;
  /**
   * The S2SNet. Without one the set is the plain-AE baseline: the chain is
   * noise → autoencoder, the detection score compares f(x) with f(AE(x)) and
   * there is no defended.onnx (which means f ∘ s).
   */
  s2snet?: Graph;
  normalisation?: Normalisation;
  resize?: ResizeFit;
  /** labelled test set for the reported metrics */
  test: Dataset & { name?: string };
  testName: string;
  /** clean images no stage trained on, for the detection threshold */
  holdout: Dataset;
  holdoutName: string;
  falsePositiveRate?: number;
  noise?: { kind: NoiseKind; sigma: number; maxSigma: number };
  chain?: DefenceStage[];
  /** how the graphs were trained (stage settings, wall times), recorded under metrics.training */
  training?: Record<string, unknown>;
  provider?: ProviderChoice;
  batchSize?: number;
  /** evaluate only this many test / held-out images (tests); omitted = all */
  limit?: number;
  quiet?: boolean;
}

export interface Assembled {
  manifest: Manifest;
  result: EvalResult;
  threshold: number;
}

const round = (v: number, digits = 6) => Number(v.toFixed(digits));

export async function assembleModelSet(o: AssembleOptions): Promise<Assembled> {
  if (o.s2snet && !encoderTrainedVariant(o.s2snet)) {
    try {
      assertEncoderFrozen(o.autoencoder, o.s2snet);
    } catch (e) {
      throw new UserError(`${(e as Error).message}: an S2SNet keeps its autoencoder's encoder unless its stage 2 recorded the --train-encoder variant; pass the autoencoder it was trained from`);
    }
  }
  const [c, h, w] = imageGeometry(o.classifier, 'classifier');
  for (const [what, g] of [['autoencoder', o.autoencoder], ['s2snet', o.s2snet]] as const) {
    if (!g) continue;
    const geo = imageGeometry(g, what);
    if (geo.join() !== [c, h, w].join()) throw new UserError(`${what} takes [${geo}] images but the classifier takes [${[c, h, w]}]`);
  }
  const norm = o.normalisation ?? IDENTITY_NORMALISATION;
  const classifier = canonicalClassifier(o.classifier, IDENTITY_NORMALISATION);
  const normalised = canonicalClassifier(o.classifier, norm);
  mkdirSync(o.dir, { recursive: true });
  const files: Record<string, string> = { classifier: 'classifier.onnx', autoencoder: 'autoencoder.onnx' };
  saveModel(classifier, join(o.dir, files.classifier));
  saveModel(o.autoencoder, join(o.dir, files.autoencoder));
  if (o.s2snet) {
    files.s2snet = 's2snet.onnx';
    files.defended = 'defended.onnx';
    saveModel(o.s2snet, join(o.dir, files.s2snet));
    saveModel(composeDefended(o.s2snet, normalised), join(o.dir, files.defended));
  }
  // The detector compares f(x) with f of the defence's reconstruction: the S2SNet's, or in a baseline set the AE's.
  const detector = o.s2snet ?? o.autoencoder;

  const common = { provider: o.provider, batchSize: o.batchSize, limit: o.limit };
  const bar = (label: string, n: number) => (o.quiet ? undefined : progressBar(label, Math.min(n, o.limit ?? n)));
  const result = await evaluate({ classifier: normalised, autoencoder: o.autoencoder, s2snet: o.s2snet }, o.test, { ...common, progress: bar(`${o.name}: test`, o.test.size) });
  const testScores = o.s2snet ? result.scores! : await detectionScores(normalised, detector, o.test, { ...common, progress: bar(`${o.name}: test scores`, o.test.size) });
  const calib = await detectionScores(normalised, detector, o.holdout, { ...common, progress: bar(`${o.name}: calibration`, o.holdout.size) });
  const fpr = o.falsePositiveRate ?? 0.05;
  const threshold = thresholdAt(calib, fpr);

  const top1: Record<string, number> = { classifier: round(result.classifier.top1), autoencoder: round(result.autoencoder!.top1) };
  const correct: Record<string, number> = { classifier: result.classifier.correct, autoencoder: result.autoencoder!.correct };
  const psnrDb: Record<string, number> = { autoencoder: round(result.autoencoder!.psnrDb, 3) };
  if (result.s2snet) {
    top1.s2snet = round(result.s2snet.top1);
    correct.s2snet = result.s2snet.correct;
    psnrDb.s2snet = round(result.s2snet.psnrDb, 3);
  }
  const metrics = {
    testSet: { name: o.testName, images: result.n },
    top1,
    correct,
    psnrDb,
    detection: {
      score: `KL(softmax f(x) ‖ softmax f(${o.s2snet ? 's' : 'AE'}(x)))`,
      calibrationImages: calib.length,
      flaggedCalibration: round(flaggedRate(calib, threshold)),
      flaggedCleanTest: round(flaggedRate(testScores, threshold)),
    },
    ...(o.training ? { training: o.training } : {}),
  };
  const manifest = writeManifest(o.dir, {
    schemaVersion: 1,
    name: o.name,
    version: o.version,
    description: o.description,
    input: { channels: c as 1 | 3, height: h, width: w, layout: 'NCHW', range: [0, 1], mean: [...norm.mean], std: [...norm.std], ...(o.resize ? { resize: o.resize } : {}) },
    labels: o.labels,
    files,
    defence: { chain: o.chain ?? [{ stage: 'noise' }, { stage: o.s2snet ? 's2snet' : 'autoencoder' }] },
    noise: o.noise ?? { kind: 'gaussian', sigma: 0, maxSigma: 0.1 },
    detection: {
      threshold,
      falsePositiveRate: fpr,
      calibration: `KL(softmax f(x) ‖ softmax f(${o.s2snet ? 's' : 'AE'}(x))), nearest-rank ${round(100 * (1 - fpr), 3)}th percentile over ${calib.length} clean images of ${o.holdoutName}`,
    },
    metrics,
  });
  return { manifest, result, threshold };
}
