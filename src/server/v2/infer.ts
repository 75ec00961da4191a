import { Detection, judge } from '../../serving/detection';
import { resolveSigma } from '../../serving/noise';
import type { ServedModel } from '../../serving/served-model';
import { UserError } from '../../util/errors';
import type { Metrics } from '../metrics';
import type { RequestRecord } from '../../telemetry/request-context';
import { runPipeline } from '../pipeline';
import { InputDatatype, OutputDatatype, OutputValues, isInputDatatype, pixelsFromBytes, pixelsFromJson } from './datatypes';
import { DEFAULT_OUTPUTS, INPUT_NAME, OUTPUT_NAMES, OutputName, outputDatatype, outputShape } from './metadata';

/**
 * One inference in protocol terms, whatever carried it (HTTP JSON, HTTP
 * binary, gRPC): check the input tensor against the model, run the images
 * through the same pipeline as /v1/classify (batcher, queue limit, deadline,
 * noise policy, metrics), and return every requested output as a typed tensor.
 */

export type ParamValue = string | number | boolean;
export type Params = Record<string, ParamValue>;

export interface TensorInput {
  name: string;
  datatype: string;
  shape: number[];
  /** JSON `data` (flat or nested) … */
  data?: unknown;
  /** … or raw little-endian bytes (binary extension, gRPC raw contents) */
  raw?: Uint8Array;
}

export interface InferCall {
  model: ServedModel;
  parameters?: Params;
  inputs: TensorInput[];
  /** requested output names; undefined = the defaults */
  outputs?: string[];
  /** ms left before the request's deadline */
  budgetMs: number;
  /** the HTTP request's log record, for its trace spans */
  record?: RequestRecord;
}

export interface TensorOutput {
  name: string;
  datatype: OutputDatatype;
  shape: number[];
  values: OutputValues;
}

export interface InferResult {
  outputs: TensorOutput[];
  sigma: number;
  detections: Detection[];
}

export interface InferLimits {
  /** most images per request */
  maxParts: number;
}

/** A request parameter read as a number (strings such as "0.1" included). */
export function numberParam(p: Params | undefined, key: string): number | undefined {
  const v = p?.[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new UserError(`parameter '${key}' must be a number, got ${JSON.stringify(v)}`);
  return n;
}

/** The requested outputs, checked: known names, each once. */
export function requestedOutputs(names: string[] | undefined): OutputName[] {
  if (names === undefined || names.length === 0) return [...DEFAULT_OUTPUTS];
  const seen = new Set<string>();
  for (const n of names) {
    if (!(OUTPUT_NAMES as readonly string[]).includes(n)) throw new UserError(`unknown output '${n}'; the model's outputs are ${OUTPUT_NAMES.join(', ')}`);
    if (seen.has(n)) throw new UserError(`output '${n}' is requested twice`);
    seen.add(n);
  }
  return names as OutputName[];
}

/** The input's batch size after checking name, datatype and shape against the model. */
export function checkInput(model: ServedModel, inputs: TensorInput[], limits: InferLimits): { input: TensorInput; datatype: InputDatatype; count: number } {
  if (inputs.length !== 1) throw new UserError(`the model takes exactly one input ('${INPUT_NAME}'), got ${inputs.length}`);
  const input = inputs[0];
  if (input.name !== INPUT_NAME) throw new UserError(`unknown input '${input.name}'; the model's input is '${INPUT_NAME}'`);
  const datatype = input.datatype;
  if (!isInputDatatype(datatype)) throw new UserError(`input datatype ${datatype} is not supported; send FP32 or FP16 (values in [0,1]) or UINT8 (0–255)`);
  const { channels, height, width } = model.geometry;
  const s = input.shape;
  if (s.length !== 4 || s[1] !== channels || s[2] !== height || s[3] !== width || !(s[0] >= 1) || !Number.isSafeInteger(s[0])) {
    throw new UserError(`input shape [${s.join(', ')}] does not fit the model; expected [N, ${channels}, ${height}, ${width}] with N ≥ 1`);
  }
  if (s[0] > limits.maxParts) throw new UserError(`batch of ${s[0]}; at most ${limits.maxParts} images per request`, 413);
  if (input.raw === undefined && input.data === undefined) throw new UserError(`input '${input.name}' has no data: send 'data', or binary data with the 'binary_data_size' parameter`);
  return { input, datatype, count: s[0] };
}

export async function runInfer(call: InferCall, limits: InferLimits, metrics: Metrics): Promise<InferResult> {
  const { model } = call;
  const wanted = requestedOutputs(call.outputs);
  const { input, datatype, count } = checkInput(model, call.inputs, limits);
  const sigma = resolveSigma(model.noise, numberParam(call.parameters, 'noise'));
  const size = model.imageSize;
  const pixels = input.raw !== undefined ? pixelsFromBytes(input.name, datatype, input.raw, count * size) : pixelsFromJson(input.name, datatype, input.data, count * size, 4);
  const reconstruction = wanted.includes('reconstruction');
  const { results } = await runPipeline(
    { model, count, prepare: async (i) => pixels.subarray(i * size, (i + 1) * size), sigma, reconstruction, budgetMs: call.budgetMs, record: call.record },
    metrics,
  );
  const detections = results.map((r) => judge(r.output.score, model.threshold));
  const k = model.labels.length;
  const values = (name: OutputName): Float32Array | Uint8Array => {
    switch (name) {
      case 'probs': {
        const out = new Float32Array(count * k);
        results.forEach((r, i) => out.set(r.output.probs, i * k));
        return out;
      }
      case 'score':
        return Float32Array.from(results, (r) => r.output.score);
      case 'adversarial':
        return Uint8Array.from(detections, (d) => (d.verdict === 'adversarial' ? 1 : 0));
      case 'noise_sigma':
        return new Float32Array(count).fill(sigma);
      case 'reconstruction': {
        const out = new Float32Array(count * size);
        results.forEach((r, i) => out.set(r.output.reconstruction!, i * size));
        return out;
      }
    }
  };
  const outputs = wanted.map((name) => ({ name, datatype: outputDatatype(name), shape: outputShape(name, model, count), values: values(name) }));
  return { outputs, sigma, detections };
}
