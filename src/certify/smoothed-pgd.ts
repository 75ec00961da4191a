import type { GradientOracle } from '../attacks/oracle';
import { streamRng } from '../attacks/seeding';

/**
 * L2 PGD against a smoothed classifier (Salman et al. 2019, "Provably
 * Robust Deep Learning via Adversarially Trained Smoothed Classifiers"):
 * ascend −log of the Monte Carlo estimate of the smoothed soft classifier's
 * probability of the label, E_δ[softmax f(x + δ)]_c, with the expectation
 * over noise taken inside the gradient (EOT). Its gradient from m draws is
 * the p_c-weighted mean of the per-draw cross-entropy gradients:
 *   ∇ −log Σ_j p_j,c = Σ_j p_j,c ∇(−log p_j,c) / Σ_j p_j,c.
 * Each step is normalised in L2 and the iterate projected back onto the L2
 * ball of `radius` around x (and into [0, 1], which never leaves the ball).
 * Used to check certificates empirically: within a certified radius it must
 * never find a point where g answers otherwise.
 */

export interface SmoothedPgdParams {
  /** L2 budget */
  radius: number;
  sigma: number;
  steps: number;
  /** L2 length of each step (default 2.5·radius/steps, Madry et al.'s rule) */
  stepSize?: number;
  /** noise draws per gradient */
  samples: number;
  seed: number;
}

function softmaxAt(logits: Float32Array, offset: number, k: number, c: number): number {
  let m = -Infinity;
  for (let i = 0; i < k; i++) m = Math.max(m, logits[offset + i]);
  let s = 0;
  for (let i = 0; i < k; i++) s += Math.exp(logits[offset + i] - m);
  return Math.exp(logits[offset + c] - m) / s;
}

/** The adversarial image for one image x of class `label`. */
export async function smoothedPgdL2(oracle: GradientOracle, x: Float32Array, label: number, p: SmoothedPgdParams): Promise<Float32Array> {
  const d = oracle.imageSize;
  const k = oracle.numClasses;
  const m = p.samples;
  const step = p.stepSize ?? (2.5 * p.radius) / p.steps;
  const adv = Float32Array.from(x);
  const labels = new Int32Array(m).fill(label);
  const ids = Array.from({ length: m }, (_, j) => j);
  for (let t = 0; t < p.steps; t++) {
    const rng = streamRng(p.seed, 'smoothed-pgd', t);
    const batch = new Float32Array(m * d);
    for (let j = 0; j < m; j++) for (let i = 0; i < d; i++) batch[j * d + i] = adv[i] + p.sigma * rng.normal();
    const r = await oracle.gradient({ x: batch, labels, loss: 'cross-entropy', ids, step: t });
    const g = new Float64Array(d);
    let wsum = 0;
    for (let j = 0; j < m; j++) {
      const w = softmaxAt(r.logits, j * k, k, label);
      wsum += w;
      for (let i = 0; i < d; i++) g[i] += w * r.grad[j * d + i];
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += (g[i] / Math.max(wsum, 1e-30)) ** 2;
    norm = Math.sqrt(norm);
    if (!(norm > 0)) break;
    const scale = step / norm / Math.max(wsum, 1e-30);
    for (let i = 0; i < d; i++) adv[i] += scale * g[i];
    // Project onto the L2 ball around x, then into the pixel box (which only moves points closer to x ∈ [0,1]).
    let dist = 0;
    for (let i = 0; i < d; i++) dist += (adv[i] - x[i]) ** 2;
    dist = Math.sqrt(dist);
    if (dist > p.radius) for (let i = 0; i < d; i++) adv[i] = x[i] + ((adv[i] - x[i]) * p.radius) / dist;
    for (let i = 0; i < d; i++) adv[i] = Math.min(1, Math.max(0, adv[i]));
  }
  return adv;
}
