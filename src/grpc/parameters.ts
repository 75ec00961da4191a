import type { ParamValue, Params } from '../server/v2/infer';
import type { InferParameter } from './proto';

/** gRPC InferParameter (a oneof) ↔ the plain values the HTTP side uses. */

export function fromGrpc(map: Record<string, InferParameter> | undefined): Params {
  const out: Params = {};
  for (const [key, p] of Object.entries(map ?? {})) {
    const choice = p.parameter_choice;
    if (choice) out[key] = p[choice] as ParamValue;
  }
  return out;
}

/** Numbers go out as double_param: the service's parameters (sigma, threshold) are reals even when whole. */
export function toGrpc(params: Record<string, number | string | boolean>): Record<string, InferParameter> {
  const out: Record<string, InferParameter> = {};
  for (const [key, v] of Object.entries(params)) {
    out[key] = typeof v === 'boolean' ? { bool_param: v } : typeof v === 'string' ? { string_param: v } : { double_param: v };
  }
  return out;
}
