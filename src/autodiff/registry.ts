import { GradientRule, NO_GRADIENT } from './rule';
import { activations } from './ops/activations';
import { batchNormalization } from './ops/batchNormalization';
import { conv } from './ops/conv';
import { elementwise } from './ops/elementwise';
import { gather } from './ops/gather';
import { linear } from './ops/linear';
import { pool } from './ops/pool';
import { reduce } from './ops/reduce';
import { resize } from './ops/resize';
import { softmax } from './ops/softmax';
import { structural } from './ops/structural';

/**
 * The table from ONNX op type to gradient rule. Op families live in
 * ./ops/<family>.ts and export plain records; this file is the only one that
 * knows them all, so adding an op never touches the engine.
 */
const rules = new Map<string, GradientRule>();

export function registerGradient(opType: string, rule: GradientRule): void {
  rules.set(opType, rule);
}

export function gradientRule(opType: string): GradientRule | undefined {
  return rules.get(opType);
}

/** Op types the engine can differentiate through (including those that carry no gradient). */
export function supportedOps(): string[] {
  return [...rules.keys()].sort();
}

for (const family of [elementwise, activations, linear, softmax, reduce, structural, gather, conv, pool, batchNormalization, resize]) {
  for (const [op, rule] of Object.entries(family)) registerGradient(op, rule);
}

/**
 * Ops whose outputs carry no gradient: integer results (shapes, sizes, indices,
 * comparisons) and piecewise-constant maps (derivative 0 almost everywhere).
 * Constant/Shape-driven subgraphs of exported models are made of these.
 */
for (const op of [
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'EyeLike', 'Range', 'NonZero', 'ArgMax', 'ArgMin',
  'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf',
  'Floor', 'Ceil', 'Round', 'Sign', 'OneHot', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike',
  'Multinomial', 'Bernoulli', 'Unique', 'BitShift', 'QuantizeLinear', 'DynamicQuantizeLinear',
]) registerGradient(op, NO_GRADIENT);
