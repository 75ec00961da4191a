import { Graph } from '../onnx/graph';
import { StageResult, StageRun, runStage } from './run-stage';
import { imageInput, logitsOutput } from './compose';
import { gaussianAugmented } from './gaussian-augment';

/**
 * Trains a classifier on labelled images with softmax cross-entropy, every
 * parameter trainable, BatchNorm in training form (batch statistics, running
 * statistics updated and exported). The classifier sees images in [0, 1];
 * architectures built here normalise with their first BatchNorm.
 */
export type ClassifierStage = Omit<StageRun, 'artifacts' | 'model'> & {
  model: Graph;
  /** σ of Gaussian augmentation of the training images (Cohen et al.'s noise training for randomized smoothing); off when absent */
  gaussianAugment?: number;
};

export function trainClassifier({ gaussianAugment, ...r }: ClassifierStage): Promise<StageResult> {
  const input = imageInput(r.model, 'classifier');
  if (gaussianAugment) r = { ...r, train: gaussianAugmented(r.train, gaussianAugment, r.settings.seed), dataTag: `${r.dataTag}+gaussian:${gaussianAugment}` };
  return runStage({ ...r, artifacts: { requiresGrad: 'all', input, loss: { kind: 'cross-entropy', output: logitsOutput(r.model) } } });
}
