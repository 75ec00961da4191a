import { GraphBuilder } from '../../onnx/builder';
import { StageBuilder, imageShape } from './types';

/**
 * x' = Clip(x + noise, 0, 1). The noise itself is a graph input drawn per
 * request in JS from a CSPRNG (../noise.ts): ONNX's RandomNormal is seeded
 * and predictable, and a per-image sigma is simpler to feed than to encode.
 */
export const noiseStage: StageBuilder = (_stage, ctx) => {
  const b = new GraphBuilder('noise', { opset: ctx.opset });
  const x = b.input('input', imageShape(ctx.manifest));
  const n = b.input('noise', imageShape(ctx.manifest));
  b.output(b.clip(b.add(x, n), 0, 1), 'noised');
  return { graph: b.build(), input: 'input', output: 'noised' };
};
