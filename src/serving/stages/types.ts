import type { Graph } from '../../onnx/graph';
import type { DefenceStage, Manifest } from '../../models/manifest';

/** What a stage builder may use: the model set and its loaded graphs by file key. */
export interface StageContext {
  manifest: Manifest;
  graphs: Record<string, Graph>;
  /** opset for graphs the stage builds itself */
  opset: number;
}

/**
 * One defence stage as a graph: it reads the image at `input` ([N,C,H,W]
 * float in [0,1]) and writes the transformed image at `output`, same shape.
 * Further graph inputs (e.g. `noise`) become inputs of the serving graph.
 */
export interface StageGraph {
  graph: Graph;
  input: string;
  output: string;
}

export type StageBuilder<S extends DefenceStage = DefenceStage> = (stage: S, ctx: StageContext) => StageGraph;

/** [N, C, H, W] of the model set, batch axis symbolic. */
export function imageShape(m: Manifest): [string, number, number, number] {
  return ['N', m.input.channels, m.input.height, m.input.width];
}
