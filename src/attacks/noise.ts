import { UserError } from '../util/errors';
import { Rng } from '../util/random';

/**
 * The paper's noise layers (docs/protocol.md, "Noise layers"), drawn from a seeded
 * generator so an evaluation can be repeated exactly. The service draws the
 * same distributions from a CSPRNG (src/serving/noise.ts); a seeded stream is
 * right here because reproducibility, not unpredictability, is the point.
 */
export type NoiseKind = 'gaussian' | 'uniform' | 'sign';

export interface NoiseSpec {
  kind: NoiseKind;
  sigma: number;
}

export const NOISE_KINDS: readonly NoiseKind[] = ['gaussian', 'uniform', 'sign'];

/** `gaussian:0.05` → { kind: 'gaussian', sigma: 0.05 } */
export function parseNoise(text: string): NoiseSpec {
  const m = /^([a-z]+):([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)$/i.exec(text.trim());
  if (!m) throw new UserError(`noise '${text}' is not KIND:SIGMA (e.g. gaussian:0.05)`);
  const kind = m[1].toLowerCase() as NoiseKind;
  if (!NOISE_KINDS.includes(kind)) throw new UserError(`noise kind '${m[1]}' is not one of ${NOISE_KINDS.join(', ')}`);
  const sigma = Number(m[2]);
  if (!(sigma > 0 && sigma <= 1)) throw new UserError(`noise sigma ${m[2]} must be in (0, 1]`);
  return { kind, sigma };
}

export function noiseId(spec: NoiseSpec | null): string {
  return spec ? `${spec.kind}:${spec.sigma}` : 'none';
}

/** One draw of the noise distribution. */
export function drawNoise(rng: Rng, spec: NoiseSpec): number {
  switch (spec.kind) {
    case 'gaussian':
      return rng.normal() * spec.sigma;
    case 'uniform':
      return (rng.uniform() * 2 - 1) * spec.sigma;
    case 'sign':
      return rng.uniform() < 0.5 ? -spec.sigma : spec.sigma;
  }
}

/**
 * clip(x + n, 0, 1) for one image, writing into `out` at `offset`; returns
 * nothing but fills `inside` (when given) with 1 where the clip did not bind,
 * which is where the gradient of the noise layer passes through.
 */
export function addNoise(
  x: Float32Array,
  xOffset: number,
  size: number,
  spec: NoiseSpec,
  rng: Rng,
  out: Float32Array,
  outOffset: number,
  inside?: Uint8Array,
): void {
  for (let i = 0; i < size; i++) {
    const v = x[xOffset + i] + drawNoise(rng, spec);
    const c = v < 0 ? 0 : v > 1 ? 1 : v;
    out[outOffset + i] = c;
    if (inside) inside[outOffset + i] = v > 0 && v < 1 ? 1 : 0;
  }
}
