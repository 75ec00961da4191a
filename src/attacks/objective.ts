/**
 * What an attack pushes on, read from logits: the per-sample loss kinds the
 * gradient oracles differentiate, the direction that helps the attacker, and
 * whether an image already counts as adversarial.
 */
// Bound once: these loops run per pixel, and global lookups are slow inside vm contexts (jest's).
const { exp, log, max } = Math;

/**
 * 'kl' is KL(p ‖ softmax(z)) from a reference distribution p given per image
 * (GradientRequest.reference), ascended: TRADES' inner maximisation, where p
 * is the model's prediction on the clean image. It needs no label, so it is
 * an objective for making training examples, not one an evaluation attack
 * offers (LOSS_KINDS).
 */
export type LossKind = 'cross-entropy' | 'margin' | 'dlr' | 'dlr-targeted' | 'kl';

/** Losses a plain attack can use (dlr-targeted needs a target per image as well as the label: APGD-T only). */
export const LOSS_KINDS: readonly LossKind[] = ['cross-entropy', 'margin', 'dlr'];

/**
 * +1 when the attacker ascends the oracle's loss, −1 when it descends.
 * cross-entropy(label): untargeted ascends it (away from y), targeted
 * descends it (towards t). margin(label) = z_label − max_{i≠label} z_i:
 * untargeted descends it, targeted ascends it. dlr (untargeted only, see
 * dlrOf): ascended.
 */
export function ascentSign(loss: LossKind, targeted: boolean): number {
  if (loss === 'dlr' || loss === 'dlr-targeted') {
    if (targeted) throw new Error('the dlr loss is untargeted only (its targeted form needs the true label as well as the target)');
    return 1;
  }
  if (loss === 'kl') {
    if (targeted) throw new Error('the kl loss has no target: it moves the prediction away from a reference distribution');
    return 1;
  }
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
 * Difference of Logits Ratio (Croce & Hein 2020, "Reliable evaluation of
 * adversarial robustness with an ensemble of diverse parameter-free
 * attacks"): −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3), π the classes sorted by
 * logit, descending. Dividing by the spread of the top logits makes it
 * invariant to a shift and a rescaling of z, so a model whose logits are
 * huge or saturated (flat cross-entropy) still gives a useful direction.
 * Needs at least three classes.
 */
export function dlrOf(logits: Float32Array, k: number, row: number, label: number): number {
  return dlrWithWeights(logits, k, row, label).value;
}

const DLR_FLOOR = 1e-12;

/**
 * DLR and its derivative ∂DLR/∂z_c for every class c. The input gradient is
 * then Σ_c w_c ∇z_c, which the oracle gets from one backward pass of the
 * weighted logit sum (weighted.ts). Ties in the sort resolve to the lower
 * class index, as the forward value does.
 */
export function dlrWithWeights(logits: Float32Array, k: number, row: number, label: number, weights?: Float32Array): { value: number } {
  if (k < 3) throw new Error(`the dlr loss needs at least 3 classes, the model has ${k}`);
  const z = (j: number) => logits[row * k + j];
  let other = -1;
  for (let j = 0; j < k; j++) if (j !== label && (other < 0 || z(j) > z(other))) other = j;
  // π1 and π3: the largest and third-largest logits.
  let p1 = -1;
  let p2 = -1;
  let p3 = -1;
  for (let j = 0; j < k; j++) {
    if (p1 < 0 || z(j) > z(p1)) {
      p3 = p2;
      p2 = p1;
      p1 = j;
    } else if (p2 < 0 || z(j) > z(p2)) {
      p3 = p2;
      p2 = j;
    } else if (p3 < 0 || z(j) > z(p3)) {
      p3 = j;
    }
  }
  const m = z(label) - z(other);
  const spread = z(p1) - z(p3) + DLR_FLOOR;
  if (weights) {
    const o = row * k;
    for (let j = 0; j < k; j++) weights[o + j] = 0;
    // d(−m/D) = −dm/D + m·dD/D²
    weights[o + label] += -1 / spread;
    weights[o + other] += 1 / spread;
    const s = m / (spread * spread);
    weights[o + p1] += s;
    weights[o + p3] -= s;
  }
  return { value: -m / spread };
}

/**
 * Targeted DLR (Croce & Hein 2020): −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2),
 * ascended to push class t above the true class y. Needs four classes.
 * Fills ∂/∂z into `weights` when given.
 */
export function targetedDlrWithWeights(logits: Float32Array, k: number, row: number, label: number, target: number, weights?: Float32Array): { value: number } {
  if (k < 4) throw new Error(`the targeted dlr loss needs at least 4 classes, the model has ${k}`);
  const o = row * k;
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => logits[o + b] - logits[o + a] || a - b);
  const [p1, , p3, p4] = order;
  const m = logits[o + label] - logits[o + target];
  const spread = logits[o + p1] - (logits[o + p3] + logits[o + p4]) / 2 + DLR_FLOOR;
  if (weights) {
    for (let j = 0; j < k; j++) weights[o + j] = 0;
    weights[o + label] += -1 / spread;
    weights[o + target] += 1 / spread;
    const s = m / (spread * spread);
    weights[o + p1] += s;
    weights[o + p3] -= s / 2;
    weights[o + p4] -= s / 2;
  }
  return { value: -m / spread };
}

/**
 * KL(p ‖ softmax(z)) = Σ_c p_c (log p_c − log softmax(z)_c) for one row, p
 * the row's reference distribution, and its derivative softmax(z) − p into
 * `weights` when given (the weighted-logit backward pass turns that into the
 * input gradient, as for DLR). Terms with p_c = 0 contribute nothing.
 */
export function klToReferenceWithWeights(logits: Float32Array, k: number, row: number, reference: Float32Array, weights?: Float32Array): { value: number } {
  const o = row * k;
  let m = -Infinity;
  for (let j = 0; j < k; j++) m = max(m, logits[o + j]);
  let s = 0;
  for (let j = 0; j < k; j++) s += exp(logits[o + j] - m);
  const logZ = m + log(s);
  let value = 0;
  for (let j = 0; j < k; j++) {
    const p = reference[o + j];
    if (p > 0) value += p * (log(p) - (logits[o + j] - logZ));
    if (weights) weights[o + j] = exp(logits[o + j] - logZ) - p;
  }
  return { value };
}

/** Row-wise softmax of [n, K] logits: a reference distribution for the kl loss. */
export function softmaxRows(logits: Float32Array, k: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let o = 0; o < logits.length; o += k) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = max(m, logits[o + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += out[o + j] = exp(logits[o + j] - m);
    for (let j = 0; j < k; j++) out[o + j] /= s;
  }
  return out;
}

/**
 * The attacker's objective for one sample (higher is better for the attack),
 * so candidates from different restarts can be compared.
 */
export function attackObjective(loss: LossKind, targeted: boolean, logits: Float32Array, k: number, row: number, label: number): number {
  // The targeted DLR's target is per walk; candidates are compared by the untargeted margin.
  if (loss === 'dlr-targeted') return -marginOf(logits, k, row, label);
  if (loss === 'kl') throw new Error('the kl loss needs a reference distribution per image; it is not an attack objective');
  const v = loss === 'cross-entropy' ? crossEntropyOf(logits, k, row, label) : loss === 'dlr' ? dlrOf(logits, k, row, label) : marginOf(logits, k, row, label);
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
