import { GraphBuilder } from '../../onnx/builder';
import type { DefenceStage } from '../../models/manifest';
import { StageBuilder, imageShape } from './types';

/** Bit-depth reduction (feature squeezing): round each value to 2^bits levels. */
export const bitDepthStage: StageBuilder = (stage, ctx) => {
  const { bits } = stage as Extract<DefenceStage, { stage: 'bitDepth' }>;
  const levels = 2 ** bits - 1;
  const b = new GraphBuilder('bit_depth', { opset: ctx.opset });
  const x = b.input('input', imageShape(ctx.manifest));
  const scaled = b.mul(x, b.scalar(levels, 'levels'));
  b.output(b.div(b.op('Round', [scaled]), b.scalar(levels, 'levels')), 'quantised');
  return { graph: b.build(), input: 'input', output: 'quantised' };
};
