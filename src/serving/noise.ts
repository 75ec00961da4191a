import { randomFillSync } from 'node:crypto';
import { UserError } from '../util/errors';
import type { NoiseKind } from '../models/manifest';

/**
 * Serving noise (docs/protocol.md, "Noise layers"): added to the input before the
 * S2SNet, clipped to [0,1] inside the graph. Drawn from node:crypto's CSPRNG,
 * never a seeded generator: an attacker who could predict the draw could
 * subtract it and the randomisation would defend nothing.
 */

export interface NoisePolicy {
  kind: NoiseKind;
  /** operator floor, applied when the client asks for nothing or for less */
  sigma: number;
  /** operator ceiling; asking for more is a client error */
  maxSigma: number;
}

export const NOISE_KINDS: readonly NoiseKind[] = ['gaussian', 'uniform', 'sign'];

/** The sigma a request gets: at least the floor, at most the ceiling (above it is a 400). */
export function resolveSigma(policy: NoisePolicy, requested: number | undefined): number {
  if (requested === undefined) return policy.sigma;
  if (!Number.isFinite(requested) || requested < 0) throw new UserError(`noise must be a number ≥ 0, got ${requested}`);
  if (requested > policy.maxSigma) throw new UserError(`noise ${requested} exceeds the operator's maximum ${policy.maxSigma}`);
  return Math.max(requested, policy.sigma);
}

const CHUNK = 16384;
const TWO_POW_32 = 4294967296;

/** Fills `out[offset, offset+count)` with noise of the given kind scaled by sigma. */
export function fillNoise(out: Float32Array, offset: number, count: number, kind: NoiseKind, sigma: number): void {
  if (sigma === 0) {
    out.fill(0, offset, offset + count);
    return;
  }
  const bits = new Uint32Array(Math.min(CHUNK, kind === 'gaussian' ? count + (count & 1) : count));
  let i = 0;
  while (i < count) {
    randomFillSync(bits);
    if (kind === 'gaussian') {
      // Box–Muller on pairs of 32-bit uniforms; u1 in (0,1] keeps log finite.
      for (let j = 0; j + 1 < bits.length && i < count; j += 2) {
        const u1 = (bits[j] + 1) / TWO_POW_32;
        const u2 = bits[j + 1] / TWO_POW_32;
        const r = Math.sqrt(-2 * Math.log(u1)) * sigma;
        out[offset + i++] = r * Math.cos(2 * Math.PI * u2);
        if (i < count) out[offset + i++] = r * Math.sin(2 * Math.PI * u2);
      }
    } else if (kind === 'uniform') {
      for (let j = 0; j < bits.length && i < count; j++) out[offset + i++] = ((bits[j] + 0.5) / TWO_POW_32 * 2 - 1) * sigma;
    } else {
      // sign(u), u ~ U(-1,1): one random bit per value.
      for (let j = 0; j < bits.length && i < count; j++) out[offset + i++] = bits[j] & 1 ? sigma : -sigma;
    }
  }
}
