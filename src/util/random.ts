import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

/**
 * Seeded random numbers for everything reproducible (weight init, shuffling,
 * attack restarts). Its state can be saved in a checkpoint and restored, so a
 * resumed training run draws the same numbers as an uninterrupted one.
 * Not for serving noise: that must be unpredictable (see node:crypto).
 */
// Bound once: inside jest's VM context every global lookup (`Math`) goes through an interceptor,
// which made weight initialisation of large models ~10× slower in tests than in Node.
const { log, sqrt, sin, cos, floor, PI } = Math;

export interface RngState {
  gen: number[];
  spareNormal: number | null;
}

export class Rng {
  private gen: JumpableRandomGenerator;
  private spareNormal: number | undefined;

  constructor(seedOrState: number | RngState) {
    if (typeof seedOrState === 'number') {
      this.gen = xoroshiro128plus(seedOrState);
    } else {
      this.gen = xoroshiro128plusFromState(seedOrState.gen);
      this.spareNormal = seedOrState.spareNormal ?? undefined;
    }
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = (this.gen.next() >>> 0) >>> 5; // 27 bits
    const lo = (this.gen.next() >>> 0) >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal draw (Box–Muller; the second value is kept for the next call). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = sqrt(-2 * log(u));
    this.spareNormal = r * sin(2 * PI * v);
    return r * cos(2 * PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return floor(this.uniform() * n);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** Serialisable state; `new Rng(state)` continues the same sequence. */
  state(): RngState {
    return { gen: [...this.gen.getState()], spareNormal: this.spareNormal ?? null };
  }
}
