import { Node } from '../onnx/graph';
import { Emitter } from './emitter';

/**
 * What a gradient rule sees: the forward node (its input and output names are
 * the forward values, available to the backward pass), the upstream gradient
 * of each output, and the emitter that appends backward nodes.
 */
export interface GradContext {
  node: Node;
  /** d(loss)/d(output i); undefined where that output does not reach the loss */
  dy: (string | undefined)[];
  e: Emitter;
}

/**
 * A lazily built gradient: called only when that input needs one. It may
 * return undefined when that input's influence is already accounted for in
 * another input's gradient (a fused formula, see BatchNormalization).
 */
export type GradThunk = () => string | undefined;

/**
 * One op's gradient, in the spirit of tfjs-core's gradient configs: which
 * inputs can carry a gradient at all, and a function from the upstream
 * gradients to one thunk per input. Thunks that are never called emit nothing,
 * so frozen parameters cost nothing.
 */
export interface GradientRule {
  /**
   * Indices of inputs through which gradients flow (default: all). Shape,
   * axes, index and mask operands are listed out, so a value that only feeds
   * them is never differentiated.
   */
  differentiable?: number[] | ((node: Node) => number[]);
  grad(ctx: GradContext): (GradThunk | undefined)[];
}

/** Ops whose outputs carry no gradient (integer results, shapes, piecewise-constant maps). */
export const NO_GRADIENT: GradientRule = { differentiable: [], grad: () => [] };
