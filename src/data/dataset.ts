/**
 * What the trainers and evaluators read images from. Images are float32 NCHW
 * in [0, 1] (the project's graph-input convention); labels are class indices
 * as int64, the dtype ONNX cross-entropy ops expect.
 *
 * `get` returns exactly one row per requested index, in order, so a batch's
 * size is always `indices.length`; readers that meet an unreadable file
 * substitute a readable one and count it (see FolderSummary), they never
 * shorten a batch or throw half-way through an epoch.
 */
export interface Batch {
  images: Float32Array;
  labels?: BigInt64Array;
}

export interface Dataset {
  size: number;
  /** [C, H, W] of one image */
  shape: number[];
  /** class names, indexed by label value; absent for unlabelled data */
  labels?: string[];
  get(indices: number[]): Promise<Batch> | Batch;
}

/** A view of some rows of another dataset (held-out splits, small smoke-test sets). */
export function subset(ds: Dataset, rows: readonly number[]): Dataset {
  checkIndices(rows, ds.size, 'subset');
  const map = [...rows];
  return {
    size: map.length,
    shape: ds.shape,
    labels: ds.labels,
    get: (indices) => {
      checkIndices(indices, map.length, 'subset');
      return ds.get(indices.map((i) => map[i]));
    },
  };
}

/** Checks indices before a reader touches memory or disk. */
export function checkIndices(indices: readonly number[], size: number, what: string): void {
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= size) throw new RangeError(`${what}: index ${i} outside [0, ${size})`);
  }
}
