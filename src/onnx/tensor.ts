import { DataType, TypedArray, dataTypeName } from './dtype';

/** A constant tensor held in memory: an initializer, a Constant's value, a test input. */
export interface TensorData {
  dataType: DataType;
  dims: number[];
  data: TypedArray;
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function floatTensor(dims: number[], data?: ArrayLike<number>): TensorData {
  const arr = new Float32Array(numel(dims));
  if (data) {
    if (data.length !== arr.length) throw new Error(`floatTensor: ${data.length} values for dims [${dims}]`);
    arr.set(data);
  }
  return { dataType: DataType.FLOAT, dims: [...dims], data: arr };
}

export function int64Tensor(dims: number[], data: ArrayLike<number | bigint>): TensorData {
  const arr = new BigInt64Array(numel(dims));
  if (data.length !== arr.length) throw new Error(`int64Tensor: ${data.length} values for dims [${dims}]`);
  for (let i = 0; i < arr.length; i++) arr[i] = BigInt(data[i]);
  return { dataType: DataType.INT64, dims: [...dims], data: arr };
}

/** A rank-1 int64 tensor, the usual form of shape/axes/pads operands. */
export function int64Vector(values: ArrayLike<number | bigint>): TensorData {
  return int64Tensor([values.length], values);
}

export function scalarFloat(v: number): TensorData {
  return floatTensor([], [v]);
}

/** Reads any numeric tensor as plain numbers (int64 converted; fine for shapes and indices). */
export function tensorToNumbers(t: TensorData): number[] {
  const out: number[] = new Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}

export function describeTensor(t: TensorData): string {
  return `${dataTypeName(t.dataType)}[${t.dims.join('×')}]`;
}
