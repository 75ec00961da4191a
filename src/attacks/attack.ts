import { GradientOracle } from './oracle';

/** A batch to attack. */
export interface AttackInput {
  /** clean images, n × C·H·W, values in [0, 1] */
  x: Float32Array;
  /** per image: the true label (untargeted) or the target label (targeted) */
  labels: Int32Array;
  /** stable ids (dataset rows): per-image random streams are seeded from them */
  ids: readonly number[];
}

export interface AttackContext {
  /** L∞ radius in [0, 1] pixel units (the paper's normalised L∞) */
  eps: number;
  targeted: boolean;
  seed: number;
}

/**
 * An attack maps a batch to adversarial images that are already clipped to
 * [0, 1], inside the ε-ball and on the 8-bit grid (pixels.ts quantize), so
 * whatever evaluates them sees exactly what an attacker could submit.
 */
export interface Attack {
  readonly name: string;
  /** oracle passes (gradient or forward) per image, for progress and cost estimates */
  readonly passes: number;
  run(oracle: GradientOracle, input: AttackInput, ctx: AttackContext): Promise<Float32Array>;
}

export function checkInput(oracle: GradientOracle, input: AttackInput): number {
  const n = input.labels.length;
  if (input.x.length !== n * oracle.imageSize) throw new Error(`attack input: ${input.x.length} values for ${n} images of ${oracle.imageSize}`);
  if (input.ids.length !== n) throw new Error(`attack input: ${input.ids.length} ids for ${n} images`);
  for (const l of input.labels) if (!(l >= 0 && l < oracle.numClasses)) throw new Error(`attack input: label ${l} outside 0..${oracle.numClasses - 1}`);
  return n;
}

/** Defaults overridden by the parameters that are actually set (an explicit `undefined` keeps the default). */
export function withDefaults<D extends object, P extends Partial<Record<keyof D, unknown>>>(defaults: D, params: P | undefined): D {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) out[k] = v;
  return out as D;
}
