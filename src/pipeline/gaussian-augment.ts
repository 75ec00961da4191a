import { streamRng } from '../attacks/seeding';
import type { Dataset } from '../training/dataset';

/**
 * Gaussian data augmentation (Cohen, Rosenfeld & Kolter 2019, §4): every
 * training image is seen as x + δ, δ ~ N(0, σ²I), not clipped, so the
 * classifier learns the noisy inputs randomized smoothing will feed it. The
 * draw is seeded by (seed, the batch's rows), so a resumed run sees the same
 * noise as an uninterrupted one; labels are untouched.
 */
export function gaussianAugmented(ds: Dataset, sigma: number, seed: number): Dataset {
  if (!(Number.isFinite(sigma) && sigma > 0)) throw new RangeError(`augmentation σ must be > 0, got ${sigma}`);
  return {
    size: ds.size,
    shape: ds.shape,
    labels: ds.labels,
    async get(indices) {
      const b = await ds.get(indices);
      const rng = streamRng(seed, 'gaussian-augment', ...indices);
      const images = new Float32Array(b.images.length);
      for (let i = 0; i < images.length; i++) images[i] = b.images[i] + sigma * rng.normal();
      return { images, labels: b.labels };
    },
  };
}
