import { Batch, Dataset } from '../data/dataset';

/**
 * What the trainer reads batches from: the data readers' interface
 * (src/data/dataset.ts), so the Fashion-MNIST and image-folder readers plug
 * in as they are. `get(indices)` returns one row per index, in order: images
 * float32 NCHW in [0, 1], labels int64 class indices (absent for unlabelled
 * data, e.g. stage-1 autoencoder training); it may return a promise.
 */
export type { Batch, Dataset };

/** A dataset held in memory, e.g. a synthetic set built in a test or a subset cut from a reader. */
export function arrayDataset(images: Float32Array, shape: number[], labels?: BigInt64Array): Dataset {
  const per = shape.reduce((a, b) => a * b, 1);
  if (per === 0 || images.length % per !== 0) throw new Error(`arrayDataset: ${images.length} values do not split into images of [${shape}]`);
  const size = images.length / per;
  if (labels && labels.length !== size) throw new Error(`arrayDataset: ${size} images but ${labels.length} labels`);
  return {
    size,
    shape: [...shape],
    get(indices) {
      const out = new Float32Array(indices.length * per);
      const lab = labels ? new BigInt64Array(indices.length) : undefined;
      indices.forEach((idx, row) => {
        if (!Number.isInteger(idx) || idx < 0 || idx >= size) throw new RangeError(`arrayDataset: index ${idx} outside [0, ${size})`);
        out.set(images.subarray(idx * per, (idx + 1) * per), row * per);
        if (lab) lab[row] = labels![idx];
      });
      return { images: out, labels: lab };
    },
  };
}

/** Reads a batch and checks that the reader kept its promise about sizes. */
export async function readBatch(ds: Dataset, indices: number[]): Promise<Batch> {
  const b = await ds.get(indices);
  const per = ds.shape.reduce((a, c) => a * c, 1);
  if (b.images.length !== indices.length * per) {
    throw new Error(`dataset returned ${b.images.length} values for ${indices.length} images of [${ds.shape}]`);
  }
  if (b.labels && b.labels.length !== indices.length) throw new Error(`dataset returned ${b.labels.length} labels for ${indices.length} images`);
  return b;
}
