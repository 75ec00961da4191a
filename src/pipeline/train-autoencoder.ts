import { Graph } from '../onnx/graph';
import { StageResult, StageRun, runStage } from './run-stage';
import { imageInput, reconstructionOutput } from './compose';

/**
 * Stage 1 of S2SNet (docs/protocol.md, "Training"): the autoencoder AE = d ∘ e
 * learns to reconstruct its input, unsupervised — per-pixel mean squared
 * error against the image itself; labels, if the data has them, are unused.
 */
export type AutoencoderStage = Omit<StageRun, 'artifacts' | 'model'> & { model: Graph };

export function trainAutoencoder(r: AutoencoderStage): Promise<StageResult> {
  const input = imageInput(r.model, 'autoencoder');
  return runStage({ ...r, artifacts: { requiresGrad: 'all', input, loss: { kind: 'mse', output: reconstructionOutput(r.model), target: input } } });
}
