import Ajv, { ErrorObject } from 'ajv';
import { UserError } from '../../util/errors';
import { JsonLimitError, JsonLimits, parseBoundedJson } from '../body/json';
import { OpenApiDoc, deref } from '../openapi';
import type { Params } from './infer';

/**
 * The JSON inference request of the Open Inference Protocol, parsed and
 * checked against openapi.yaml's InferRequest schema. Tensor values are
 * checked later, against the model (infer.ts).
 */

export interface InferRequestJson {
  id?: string;
  parameters?: Params;
  inputs: Array<{ name: string; shape: number[]; datatype: string; parameters?: Params; data?: unknown }>;
  outputs?: Array<{ name: string; parameters?: Params }>;
}

/**
 * Every V2 JSON body goes through here, so hostile JSON (deep nesting, huge
 * arrays, poisoned keys) is bounded in one place, by the same guard as the
 * other routes' bodies, before JSON.parse builds anything.
 */
export function parseInferJson(body: Buffer | string, limits: JsonLimits): unknown {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (bytes.toString('utf8', 0, Math.min(bytes.length, 4096)).trim() === '' && bytes.toString('utf8').trim() === '') {
    throw new UserError('empty body: send a JSON inference request {"inputs": [...]}');
  }
  try {
    return parseBoundedJson(bytes, limits);
  } catch (e) {
    if (e instanceof JsonLimitError) throw e;
    throw new UserError(`body is not a JSON inference request (${(e as Error).message})`);
  }
}

function describe(e: ErrorObject): string {
  const where = `request${e.instancePath}`;
  const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues;
  return `${where} ${e.message}${allowed ? ` (${allowed.map(String).join(', ')})` : ''}`;
}

/** A checker for inference requests, compiled once from the contract. */
export function inferRequestValidator(doc: OpenApiDoc): (value: unknown) => InferRequestJson {
  const ajv = new Ajv({ strict: false, allErrors: false });
  const validate = ajv.compile(deref(doc, doc.components.schemas.InferRequest as object));
  return (value) => {
    if (!validate(value)) throw new UserError(describe(validate.errors![0]));
    return value as InferRequestJson;
  };
}
