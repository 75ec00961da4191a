import { UserError } from '../../util/errors';

/**
 * Open Inference Protocol tensor datatypes as the defended model takes and
 * gives them. Inputs are images, so FP32 values must lie in [0, 1] (the
 * model's range), UINT8 values are 0–255 and get divided by 255, FP16 is FP32
 * with less precision. Raw (binary) tensors are row-major little-endian bytes
 * in the datatype's native size, as the binary tensor data extension and the
 * gRPC `raw_input_contents` both define them.
 */

export const INPUT_DATATYPES = ['FP32', 'UINT8', 'FP16'] as const;
export type InputDatatype = (typeof INPUT_DATATYPES)[number];
export type OutputDatatype = 'FP32' | 'BOOL' | 'INT64';
/** An output tensor's values: FP32 as Float32Array, BOOL as Uint8Array (0/1), INT64 as BigInt64Array. */
export type OutputValues = Float32Array | Uint8Array | BigInt64Array;

const BYTES: Record<InputDatatype | OutputDatatype, number> = { FP32: 4, FP16: 2, UINT8: 1, BOOL: 1, INT64: 8 };

export function elementBytes(datatype: InputDatatype | OutputDatatype): number {
  return BYTES[datatype];
}

export function isInputDatatype(d: string): d is InputDatatype {
  return (INPUT_DATATYPES as readonly string[]).includes(d);
}

/** IEEE 754 half precision → number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Checks one element and returns it scaled into [0, 1]. */
function pixel(input: string, datatype: InputDatatype, i: number, v: number): number {
  if (datatype === 'UINT8') {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new UserError(`input '${input}': UINT8 element ${i} is ${v}, outside 0–255`);
    return v / 255;
  }
  if (!Number.isFinite(v)) throw new UserError(`input '${input}': element ${i} is ${v}, not a finite number`);
  if (v < 0 || v > 1) throw new UserError(`input '${input}': ${datatype} element ${i} is ${v}, outside [0, 1] (the model's input range)`);
  return v;
}

/**
 * JSON tensor data (flat or nested, row-major) → `expected` floats in [0, 1].
 * Nesting deeper than `maxDepth` is refused before it is walked further.
 */
export function pixelsFromJson(input: string, datatype: InputDatatype, data: unknown, expected: number, maxDepth: number): Float32Array {
  const out = new Float32Array(expected);
  let n = 0;
  const visit = (v: unknown, depth: number): void => {
    if (Array.isArray(v)) {
      if (depth > maxDepth) throw new UserError(`input '${input}': data is nested deeper than the tensor's rank (${maxDepth})`);
      for (const x of v) visit(x, depth + 1);
      return;
    }
    if (n >= expected) {
      n++;
      return;
    }
    if (typeof v !== 'number') throw new UserError(`input '${input}': element ${n} is ${JSON.stringify(v)?.slice(0, 20)}, not a finite number`);
    out[n] = pixel(input, datatype, n, v);
    n++;
  };
  if (!Array.isArray(data)) throw new UserError(`input '${input}': data must be an array`);
  visit(data, 1);
  if (n !== expected) throw new UserError(`input '${input}': its shape needs ${expected} values, data has ${n}`);
  return out;
}

/** Raw little-endian bytes → `expected` floats in [0, 1]. */
export function pixelsFromBytes(input: string, datatype: InputDatatype, bytes: Uint8Array, expected: number): Float32Array {
  const size = elementBytes(datatype);
  if (bytes.length !== expected * size) {
    throw new UserError(`input '${input}': its shape needs ${expected} ${datatype} values (${expected * size} bytes), binary data has ${bytes.length} bytes`);
  }
  const out = new Float32Array(expected);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < expected; i++) {
    const v = datatype === 'UINT8' ? bytes[i] : datatype === 'FP16' ? halfToFloat(view.getUint16(i * 2, true)) : view.getFloat32(i * 4, true);
    out[i] = pixel(input, datatype, i, v);
  }
  return out;
}

/** An output tensor's values → raw little-endian bytes. */
export function outputBytes(values: OutputValues): Buffer {
  if (values instanceof Uint8Array) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  if (values instanceof BigInt64Array) {
    const out = Buffer.allocUnsafe(values.length * 8);
    for (let i = 0; i < values.length; i++) out.writeBigInt64LE(values[i], i * 8);
    return out;
  }
  const out = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
  return out;
}

/** An output tensor's values as JSON data (BOOL as true/false). */
export function outputJson(datatype: OutputDatatype, values: OutputValues): Array<number | boolean> {
  if (values instanceof BigInt64Array) return Array.from(values, Number);
  return datatype === 'BOOL' ? Array.from(values, (v) => v !== 0) : Array.from(values);
}
