import type { ServedModel } from '../../serving/served-model';
import { UserError } from '../../util/errors';
import type { OutputDatatype } from './datatypes';

/**
 * What the Open Inference Protocol says about the server and a model, shared
 * by the HTTP routes and the gRPC service so both describe the same thing.
 */

export const SERVER_NAME = 's2snet-proxy';
export const SERVER_VERSION: string = require('../../../package.json').version;

/** Triton's names for what we support beyond the core protocol. */
export function serverExtensions(modelControl: boolean): string[] {
  return ['binary_tensor_data', ...(modelControl ? ['model_repository'] : [])];
}

/** The model's one input tensor. */
export const INPUT_NAME = 'input';

/** Every output, in the order an infer without `outputs` returns them. */
export const OUTPUT_NAMES = ['probs', 'score', 'adversarial', 'noise_sigma', 'reconstruction'] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];

/**
 * Outputs returned when a request lists none. The reconstruction is an image
 * per input (as large as the request), so it comes back only when asked for.
 */
export const DEFAULT_OUTPUTS: readonly OutputName[] = ['probs', 'score', 'adversarial', 'noise_sigma'];

export function outputDatatype(name: OutputName): OutputDatatype {
  return name === 'adversarial' ? 'BOOL' : 'FP32';
}

export function outputShape(name: OutputName, m: ServedModel, n: number): number[] {
  const { channels, height, width } = m.geometry;
  switch (name) {
    case 'probs':
      return [n, m.labels.length];
    case 'reconstruction':
      return [n, channels, height, width];
    default:
      return [n];
  }
}

export function modelMetadata(m: ServedModel) {
  const { channels, height, width } = m.geometry;
  return {
    name: m.name,
    versions: [m.version],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, channels, height, width] }],
    outputs: OUTPUT_NAMES.map((o) => ({ name: o, datatype: outputDatatype(o), shape: outputShape(o, m, -1) })),
  };
}

/** The model a request names, checked against the version it asks for ('' or absent = the served one). */
export function modelAt<M extends ServedModel>(models: { get(name?: string): M }, name: string, version?: string): M {
  const m = models.get(name);
  if (version && version !== m.version) throw new UserError(`model '${name}' has no version '${version}'; serving ${m.version}`, 404);
  return m;
}
