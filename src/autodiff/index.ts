/** Reverse-mode autodiff over ONNX graphs, emitting standard ONNX ops only. */
export { buildGradientGraph } from './gradient';
export type { GradientOptions, GradientResult } from './gradient';
export { appendCrossEntropy, appendMse, appendKl } from './losses';
export type { LossOnGraph } from './losses';
export { toTrainingBatchNorm } from './batchNorm';
export { inputGradientGraph, INPUT_GRADIENT_LOSSES } from './inputGradient';
export type { InputGradientLoss, InputGradientOptions } from './inputGradient';
export type { RunningStat, TrainingBatchNorm } from './batchNorm';
export { registerGradient, supportedOps, gradientRule } from './registry';
export { NO_GRADIENT } from './rule';
export type { GradientRule, GradContext } from './rule';
