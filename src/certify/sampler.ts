import type { NoiseFactory, NoiseStream, Phase } from './noise-source';
import type { Sampler } from './smoothing';

/**
 * Counting h's answers on noisy copies of one image, in batches: each batch
 * holds up to `batch` copies x + δ (n = 10,000 draws become ten session runs
 * of 1,000), and the noise of the next batch is drawn while the current one
 * runs. The draws come from the phase's own stream, in order, so the counts
 * do not depend on the batch size (up to the model's float rounding).
 */

/** Runs h on `count` noisy images laid out N·C·H·W in `noisy`; one class index per image. */
export type DrawRunner = (noisy: Float32Array, count: number) => Promise<ArrayLike<number | bigint>>;

export interface DrawSamplerOptions {
  /** C·H·W floats of the clean image */
  pixels: Float32Array;
  sigma: number;
  classes: number;
  /** noisy copies per run */
  batch: number;
  noise: NoiseFactory;
  run: DrawRunner;
}

export function drawSampler(o: DrawSamplerOptions): Sampler {
  if (!(Number.isInteger(o.batch) && o.batch >= 1)) throw new RangeError(`batch must be a positive integer, got ${o.batch}`);
  const streams = new Map<Phase, NoiseStream>();
  const size = o.pixels.length;
  const fill = (stream: NoiseStream, count: number): Float32Array => {
    const z = new Float32Array(count * size);
    stream.fill(z, 0, z.length, o.sigma);
    for (let i = 0; i < count; i++) {
      const off = i * size;
      for (let j = 0; j < size; j++) z[off + j] += o.pixels[j];
    }
    return z;
  };
  return {
    classes: o.classes,
    async sample(draws, phase) {
      // A phase drawn twice continues its stream: its draws never repeat.
      let stream = streams.get(phase);
      if (!stream) streams.set(phase, (stream = o.noise(phase)));
      const counts = new Int32Array(o.classes);
      let left = draws;
      let next = left > 0 ? fill(stream, Math.min(o.batch, left)) : undefined;
      while (next) {
        const k = next.length / size;
        left -= k;
        const running = o.run(next, k);
        next = left > 0 ? fill(stream, Math.min(o.batch, left)) : undefined;
        const preds = await running;
        if (preds.length !== k) throw new Error(`base classifier returned ${preds.length} answers for ${k} draws`);
        for (let i = 0; i < k; i++) {
          const c = Number(preds[i]);
          if (!(c >= 0 && c < o.classes)) throw new Error(`base classifier answered class ${c}, outside 0..${o.classes - 1}`);
          counts[c]++;
        }
      }
      return counts;
    },
  };
}
