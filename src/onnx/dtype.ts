/** ONNX TensorProto.DataType codes and the typed arrays that hold them. */
export enum DataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
}

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | BigUint64Array;

/** Name used by onnxruntime's Tensor constructor for each data type. */
export const ORT_TYPE: Partial<Record<DataType, string>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.BOOL]: 'bool',
  [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64',
  [DataType.FLOAT16]: 'float16',
};

export function dataTypeName(t: DataType): string {
  return DataType[t] ?? `type#${t}`;
}

export function bytesPerElement(t: DataType): number {
  switch (t) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
      return 8;
    case DataType.FLOAT16:
    case DataType.INT16:
    case DataType.UINT16:
      return 2;
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
      return 1;
    default:
      throw new Error(`no fixed element size for ${dataTypeName(t)}`);
  }
}

/** Copies raw little-endian bytes into a fresh, aligned typed array. */
export function typedArrayFromBytes(t: DataType, bytes: Uint8Array): TypedArray {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const buf = copy.buffer;
  switch (t) {
    case DataType.FLOAT:
      return new Float32Array(buf);
    case DataType.DOUBLE:
      return new Float64Array(buf);
    case DataType.INT32:
      return new Int32Array(buf);
    case DataType.INT64:
      return new BigInt64Array(buf);
    case DataType.UINT64:
      return new BigUint64Array(buf);
    case DataType.UINT32:
      return new Uint32Array(buf);
    case DataType.INT16:
      return new Int16Array(buf);
    case DataType.UINT16:
    case DataType.FLOAT16:
      return new Uint16Array(buf);
    case DataType.INT8:
      return new Int8Array(buf);
    case DataType.UINT8:
    case DataType.BOOL:
      return new Uint8Array(buf);
    default:
      throw new Error(`cannot hold ${dataTypeName(t)} in a typed array`);
  }
}
