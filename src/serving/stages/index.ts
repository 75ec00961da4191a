import type { DefenceStage } from '../../models/manifest';
import { modelStage } from './model-file';
import { bitDepthStage } from './bit-depth';
import { noiseStage } from './noise';
import type { StageBuilder } from './types';

/**
 * Every defence stage the manifest's `defence.chain` may name. A new input
 * transformation is one file here plus its entry in the manifest schema; the
 * serving graph, the batcher and the routes do not change.
 */
export const STAGES: Record<DefenceStage['stage'], StageBuilder> = {
  noise: noiseStage,
  s2snet: modelStage,
  autoencoder: modelStage,
  bitDepth: bitDepthStage,
};

export type { StageBuilder, StageContext, StageGraph } from './types';
