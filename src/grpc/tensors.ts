import { UserError } from '../util/errors';
import { OutputValues, outputBytes } from '../server/v2/datatypes';
import type { TensorInput, TensorOutput } from '../server/v2/infer';
import type { ModelInferRequest, ModelInferResponse, TensorContents } from './proto';

/**
 * ModelInfer tensors ↔ the protocol-neutral form of server/v2/infer.ts. Raw
 * contents are the binary extension's bytes; typed contents use the field
 * the protocol gives each datatype (FP32 → fp32_contents, UINT8 →
 * uint_contents, BOOL → bool_contents). Outputs go back raw when the request
 * came raw (as Triton's clients expect), typed otherwise.
 */

const CONTENTS_FIELD: Record<string, keyof TensorContents> = { FP32: 'fp32_contents', UINT8: 'uint_contents', FP16: 'fp32_contents' };

export function inputsFromGrpc(req: ModelInferRequest): TensorInput[] {
  const raw = req.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== req.inputs.length) {
    throw new UserError(`raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs; send one per input`);
  }
  return req.inputs.map((t, i) => {
    const base = { name: t.name, datatype: t.datatype, shape: t.shape };
    const typed = t.contents ? Object.entries(t.contents).filter(([, v]) => Array.isArray(v) && v.length > 0) : [];
    if (raw.length > 0) {
      if (typed.length > 0) throw new UserError(`input '${t.name}' has both contents and raw_input_contents; send one`);
      return { ...base, raw: raw[i] };
    }
    if (typed.length === 0) return base;
    const field = CONTENTS_FIELD[t.datatype];
    if (t.datatype === 'FP16') throw new UserError(`input '${t.name}': FP16 has no typed contents field; send it in raw_input_contents`);
    if (typed.length > 1 || (field && typed[0][0] !== field)) {
      throw new UserError(`input '${t.name}': ${t.datatype} values go in contents.${field ?? '(none: unsupported datatype)'}, got ${typed.map(([k]) => k).join(', ')}`);
    }
    return { ...base, data: typed[0][1] as number[] };
  });
}

export function outputsToGrpc(outputs: TensorOutput[], raw: boolean): Pick<ModelInferResponse, 'outputs' | 'raw_output_contents'> {
  if (raw) {
    return {
      outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape })),
      raw_output_contents: outputs.map((o) => outputBytes(o.values)),
    };
  }
  return {
    outputs: outputs.map((o) => ({
      name: o.name,
      datatype: o.datatype,
      shape: o.shape,
      contents: typedContents(o.values),
    })),
    raw_output_contents: [],
  };
}

/** An output's values in the typed `contents` field the datatype calls for. */
function typedContents(values: OutputValues) {
  if (values instanceof BigInt64Array) return { int64_contents: Array.from(values, Number) };
  if (values instanceof Uint8Array) return { bool_contents: Array.from(values, (v) => v !== 0) };
  return { fp32_contents: Array.from(values) };
}
