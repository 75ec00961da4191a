import { Rng } from '../util/random';

/**
 * Per-image random streams. Every random draw an attack or an evaluation
 * makes (PGD's start, an EOT noise sample, the evaluation noise) comes from a
 * generator seeded by (run seed, image id, purpose, step), never from a
 * generator shared across a batch: that is what makes results independent of
 * the batch size and of how a run is split into shards.
 */

/** FNV-1a over the UTF-16 code units, folded to 32 bits. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit seed from any sequence of numbers and tags. */
export function streamSeed(...parts: Array<number | string>): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    const v = typeof p === 'string' ? hashString(p) : mix((p >>> 0) ^ Math.imul(Math.floor(p / 4294967296) >>> 0, 0x27d4eb2d));
    h = mix((h ^ v) + 0x6a09e667 + ((h << 6) >>> 0) + (h >>> 2));
  }
  return h | 0;
}

export function streamRng(...parts: Array<number | string>): Rng {
  return new Rng(streamSeed(...parts));
}
