import { fillNoise } from '../serving/noise';
import { streamRng } from '../attacks/seeding';
import type { Rng } from '../util/random';

/**
 * Where the Gaussian draws of a certification come from. Evaluation uses a
 * seeded stream per (run seed, image, phase), so a run is reproducible and
 * independent of batch size and sharding; serving uses node:crypto's CSPRNG,
 * because a certificate computed from draws someone could predict is no
 * certificate. Either way the selection and estimation draws come from
 * separate streams, as CERTIFY requires.
 */
export interface NoiseStream {
  /** fills out[offset, offset + count) with N(0, σ²) values */
  fill(out: Float32Array, offset: number, count: number, sigma: number): void;
}

export type Phase = 'selection' | 'estimation' | 'prediction';

/** Opens the stream for one phase of one image. */
export type NoiseFactory = (phase: Phase) => NoiseStream;

/** Unpredictable draws from node:crypto (the only kind the service uses in production). */
export const cryptoNoise: NoiseFactory = () => ({
  fill: (out, offset, count, sigma) => fillNoise(out, offset, count, 'gaussian', sigma),
});

class SeededStream implements NoiseStream {
  constructor(private readonly rng: Rng) {}
  fill(out: Float32Array, offset: number, count: number, sigma: number): void {
    const rng = this.rng;
    for (let i = offset, end = offset + count; i < end; i++) out[i] = rng.normal() * sigma;
  }
}

/** Reproducible draws for evaluation: one stream per (seed, image key, phase). */
export function seededNoise(seed: number, imageKey: number | string): NoiseFactory {
  return (phase) => new SeededStream(streamRng(seed, 'certify', imageKey, phase));
}
