import { UserError } from '../../util/errors';
import { StageBuilder } from './types';

/**
 * A model file of the set used as a stage: the S2SNet (`s2snet`) or the plain
 * autoencoder (`autoencoder`, the MagNet-like baseline). Convention: input
 * `input`, output `reconstruction`.
 */
export const modelStage: StageBuilder = (stage, ctx) => {
  const key = stage.stage;
  const g = ctx.graphs[key];
  if (!g) throw new UserError(`model set '${ctx.manifest.name}': defence stage '${key}' needs files.${key}`);
  if (!g.inputs.some((v) => v.name === 'input') || g.inputs.length !== 1) {
    throw new UserError(`model set '${ctx.manifest.name}': ${key} graph must have exactly one input named 'input' (has ${g.inputs.map((v) => v.name).join(', ')})`);
  }
  if (!g.outputs.some((v) => v.name === 'reconstruction')) {
    throw new UserError(`model set '${ctx.manifest.name}': ${key} graph has no output 'reconstruction' (outputs: ${g.outputs.map((v) => v.name).join(', ')})`);
  }
  return { graph: { ...g, outputs: g.outputs.filter((v) => v.name === 'reconstruction') }, input: 'input', output: 'reconstruction' };
};
