/**
 * What an attack pushes on, read from logits: the per-sample loss kinds the
 * gradient oracles differentiate, the direction that helps the attacker, and
 * whether an image already counts as adversarial.
 */
// Bound once: these loops run per pixel, and global lookups are slow inside vm contexts (jest's).
const { exp, log, max } = Math;

export type LossKind = 'cross-entropy' | 'margin';

export const LOSS_KINDS: readonly LossKind[] = ['cross-entropy', 'margin'];

/**
 * +1 when the attacker ascends the oracle's loss, −1 when it descends.
 * cross-entropy(label): untargeted ascends it (away from y), targeted
 * descends it (towards t). margin(label) = z_label − max_{i≠label} z_i:
 * untargeted descends it, targeted ascends it.
 */
export function ascentSign(loss: LossKind, targeted: boolean): number {
  if (loss === 'cross-entropy') return targeted ? -1 : 1;
  return targeted ? 1 : -1;
}

export function argmax(logits: Float32Array, k: number, row: number): number {
  let best = 0;
  let v = -Infinity;
  for (let j = 0; j < k; j++) {
    const z = logits[row * k + j];
    if (z > v) {
      v = z;
      best = j;
    }
  }
  return best;
}

/** z_label − max over the other classes. */
export function marginOf(logits: Float32Array, k: number, row: number, label: number): number {
  let other = -Infinity;
  for (let j = 0; j < k; j++) if (j !== label) other = max(other, logits[row * k + j]);
  return logits[row * k + label] - other;
}

/** −log softmax(z)[label], computed stably. */
export function crossEntropyOf(logits: Float32Array, k: number, row: number, label: number): number {
  let m = -Infinity;
  for (let j = 0; j < k; j++) m = max(m, logits[row * k + j]);
  let s = 0;
  for (let j = 0; j < k; j++) s += exp(logits[row * k + j] - m);
  return m + log(s) - logits[row * k + label];
}

/**
 * The attacker's objective for one sample (higher is better for the attack),
 * so candidates from different restarts can be compared.
 */
export function attackObjective(loss: LossKind, targeted: boolean, logits: Float32Array, k: number, row: number, label: number): number {
  const v = loss === 'cross-entropy' ? crossEntropyOf(logits, k, row, label) : marginOf(logits, k, row, label);
  return ascentSign(loss, targeted) * v;
}

/**
 * Success: untargeted, the label is no longer the top class by more than κ
 * (margin < −κ); targeted, the target leads every other class by more than κ.
 * κ = 0 reduces to the plain argmax test (a tie counts as no success).
 */
export function isAdversarial(logits: Float32Array, k: number, row: number, label: number, targeted: boolean, kappa = 0): boolean {
  const m = marginOf(logits, k, row, label);
  return targeted ? m > kappa : m < -kappa;
}
