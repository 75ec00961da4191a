import { Graph } from '../onnx/graph';
import { StageResult, StageRun, runStage } from './run-stage';
import { imageInput, logitsOutput } from './compose';

/**
 * Trains a classifier on labelled images with softmax cross-entropy, every
 * parameter trainable, BatchNorm in training form (batch statistics, running
 * statistics updated and exported). The classifier sees images in [0, 1];
 * architectures built here normalise with their first BatchNorm.
 */
export type ClassifierStage = Omit<StageRun, 'artifacts' | 'model'> & { model: Graph };

export function trainClassifier(r: ClassifierStage): Promise<StageResult> {
  const input = imageInput(r.model, 'classifier');
  return runStage({ ...r, artifacts: { requiresGrad: 'all', input, loss: { kind: 'cross-entropy', output: logitsOutput(r.model) } } });
}
