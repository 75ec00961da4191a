import { UserError } from '../../util/errors';
import { outputBytes, outputJson } from './datatypes';
import type { Params, TensorOutput } from './infer';

/**
 * Triton's binary tensor data extension over HTTP: the body is the JSON
 * inference request (its length in `Inference-Header-Content-Length`)
 * followed by the raw bytes of every input whose parameters carry
 * `binary_data_size`, in input order. Responses work the same way for each
 * output asked for with `binary_data: true` (or, for all outputs, the
 * request parameter `binary_data_output: true`).
 */

export const HEADER_LENGTH = 'inference-header-content-length';

export interface SplitBody {
  json: Buffer;
  binary: Buffer;
}

/** The JSON part and the binary part of a request body. */
export function splitInferBody(body: Buffer, headerLength: string | string[] | undefined): SplitBody {
  if (headerLength === undefined) return { json: body, binary: body.subarray(body.length) };
  const raw = Array.isArray(headerLength) ? headerLength[0] : headerLength;
  if (!/^\d+$/.test(raw.trim())) throw new UserError(`Inference-Header-Content-Length must be a whole number of bytes, got '${raw.slice(0, 40)}'`);
  const n = Number(raw);
  if (n === 0 || n > body.length) throw new UserError(`Inference-Header-Content-Length is ${n}, but the body has ${body.length} bytes`);
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}

interface WireInput {
  name: string;
  data?: unknown;
  parameters?: Params;
}

/** Hands each input flagged with `binary_data_size` its slice of the binary part. */
export function binaryInputs(inputs: WireInput[], binary: Buffer): Array<Uint8Array | undefined> {
  let offset = 0;
  const slices = inputs.map((input) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return undefined;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new UserError(`input '${input.name}': binary_data_size must be a whole number of bytes, got ${JSON.stringify(size)}`);
    if (input.data !== undefined) throw new UserError(`input '${input.name}' has both 'data' and 'binary_data_size'; send one`);
    if (offset + size > binary.length) throw new UserError(`input '${input.name}': binary_data_size ${size} runs past the end of the body (${binary.length - offset} bytes left)`);
    const slice = binary.subarray(offset, offset + size);
    offset += size;
    return slice;
  });
  if (offset !== binary.length) {
    throw new UserError(
      offset === 0
        ? `${binary.length} bytes follow the JSON header but no input has a binary_data_size parameter`
        : `the inputs' binary_data_size add up to ${offset} bytes, but ${binary.length} bytes follow the JSON header`,
    );
  }
  return slices;
}

/** Whether an output goes back as binary: its own `binary_data`, else the request's `binary_data_output`. */
export function wantsBinary(requestParams: Params | undefined, outputParams: Params | undefined): boolean {
  const own = outputParams?.binary_data;
  if (own !== undefined) return own === true;
  return requestParams?.binary_data_output === true;
}

export interface EncodedResponse {
  body: Buffer | object;
  /** set when binary outputs follow the JSON: the JSON's length in bytes */
  headerLength?: number;
}

/**
 * The response body: plain JSON when no output is binary, else the JSON
 * header followed by the binary outputs in order.
 */
export function encodeInferResponse(head: Record<string, unknown>, outputs: TensorOutput[], binary: (o: TensorOutput) => boolean): EncodedResponse {
  const chunks: Buffer[] = [];
  const described = outputs.map((o) => {
    const meta = { name: o.name, datatype: o.datatype, shape: o.shape };
    if (!binary(o)) return { ...meta, data: outputJson(o.datatype, o.values) };
    const bytes = outputBytes(o.values);
    chunks.push(bytes);
    return { ...meta, parameters: { binary_data_size: bytes.length } };
  });
  const json = { ...head, outputs: described };
  if (chunks.length === 0) return { body: json };
  const header = Buffer.from(JSON.stringify(json), 'utf8');
  return { body: Buffer.concat([header, ...chunks]), headerLength: header.length };
}
