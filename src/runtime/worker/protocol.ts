import type { SessionOptions } from '../session';

/**
 * Messages between the main thread and an inference worker. Tensors travel
 * as (type, dims, ArrayBuffer) with the buffer in the transfer list, so a
 * batch moves between threads without a copy.
 */

export interface WireTensor {
  type: string;
  dims: number[];
  /** the element data; byteOffset 0, exactly the tensor's bytes */
  buffer: ArrayBuffer;
}

/** What a worker knows about a loaded graph (main-thread side checks and routes use it). */
export interface GraphInfo {
  provider: 'cpu' | 'cuda';
  inputNames: string[];
  outputNames: string[];
  inputs: Array<{ name: string; type: string; shape: Array<number | string> } | { name: string; type?: undefined; shape?: undefined }>;
}

/** What a worker is started with (its workerData). */
export interface WorkerStart {
  /** nice steps (1–19) below the process for the worker thread and the ORT threads it creates; 0 or absent: unchanged */
  nice?: number;
}

export type WorkerSessionOptions = Omit<SessionOptions, 'logger'>;

export type Request =
  | { kind: 'load'; id: number; name: string; model: Uint8Array; options: WorkerSessionOptions }
  | { kind: 'run'; id: number; name: string; feeds: Record<string, WireTensor>; outputs?: string[] }
  | { kind: 'release'; id: number; name: string };

export interface WireError {
  message: string;
  /** set for UserError: the caller's mistake, with its HTTP status */
  userStatus?: number;
}

export type Reply =
  | { kind: 'loaded'; id: number; info: GraphInfo }
  | { kind: 'ran'; id: number; outputs: Record<string, WireTensor> }
  | { kind: 'released'; id: number }
  | { kind: 'failed'; id: number; error: WireError }
  | { kind: 'log'; level: 'info' | 'warn'; obj: object; msg: string };

/** The tensor's bytes as a standalone ArrayBuffer: the typed array's own buffer when it owns all of it, else a copy. */
export function ownBuffer(data: ArrayBufferView): ArrayBuffer {
  const b = data.buffer;
  if (b instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === b.byteLength) return b;
  return new Uint8Array(b, data.byteOffset, data.byteLength).slice().buffer;
}

/** The typed array that views a wire tensor's buffer, by ONNX Runtime type name (bool and float16 as bytes and 16-bit words). */
export const ARRAYS: Record<string, new (b: ArrayBuffer) => ArrayBufferView> = {
  float32: Float32Array,
  float64: Float64Array,
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  float16: Uint16Array,
};
