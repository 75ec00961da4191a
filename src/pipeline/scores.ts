/**
 * Per-image numbers the evaluation and the detection calibration are made of,
 * computed in float64 from the float32 model outputs.
 */

/** Index of the largest of the K values in row `row` (first one on ties, as argmax does everywhere). */
export function argmax(logits: Float32Array, row: number, k: number): number {
  let best = 0;
  const o = row * k;
  for (let j = 1; j < k; j++) if (logits[o + j] > logits[o + best]) best = j;
  return best;
}

function logSoftmaxRow(logits: Float32Array, row: number, k: number): Float64Array {
  const o = row * k;
  let max = -Infinity;
  for (let j = 0; j < k; j++) max = Math.max(max, logits[o + j]);
  let sum = 0;
  for (let j = 0; j < k; j++) sum += Math.exp(logits[o + j] - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(k);
  for (let j = 0; j < k; j++) out[j] = logits[o + j] - lse;
  return out;
}

/** `divergence(p, q)` of the log-softmax rows of `clean` and `defended`, row by row. */
function perRow(clean: Float32Array, defended: Float32Array, k: number, divergence: (p: Float64Array, q: Float64Array) => number): Float64Array {
  const n = clean.length / k;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = divergence(logSoftmaxRow(clean, i, k), logSoftmaxRow(defended, i, k));
  return out;
}

/**
 * The detection score (docs/protocol.md, "Detection"): KL(softmax(clean) ‖ softmax(defended))
 * for every row, clean = f(x), defended = f(s(x)). Never negative.
 */
export function klScores(clean: Float32Array, defended: Float32Array, k: number): Float64Array {
  return perRow(clean, defended, k, (p, q) => {
    let kl = 0;
    for (let j = 0; j < k; j++) kl += Math.exp(p[j]) * (p[j] - q[j]);
    return Math.max(0, kl);
  });
}

/**
 * L1 distance between softmax(clean) and softmax(defended) per row: a
 * bounded cousin of the KL (0 … 2) that a confident wrong f(x) cannot blow up.
 */
export function softmaxL1Distances(clean: Float32Array, defended: Float32Array, k: number): Float64Array {
  return perRow(clean, defended, k, (p, q) => {
    let d = 0;
    for (let j = 0; j < k; j++) d += Math.abs(Math.exp(p[j]) - Math.exp(q[j]));
    return d;
  });
}

/** Mean squared difference per row of `per` values (pixels of an image, features of one activation). */
export function meanSquaredErrors(a: Float32Array, b: Float32Array, per: number): Float64Array {
  if (a.length !== b.length) throw new Error(`meanSquaredErrors: ${a.length} values vs ${b.length}`);
  const n = a.length / per;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let se = 0;
    for (let j = i * per; j < (i + 1) * per; j++) {
      const d = a[j] - b[j];
      se += d * d;
    }
    out[i] = se / per;
  }
  return out;
}

/** Floor on the per-image MSE so a perfect reconstruction gives a finite PSNR (100 dB). */
const MIN_MSE = 1e-10;

/**
 * PSNR in dB of each image against its reconstruction, peak 1 (pixels in
 * [0, 1]): 10·log10(1 / MSE) with the MSE over all C·H·W values of the image.
 */
export function psnrPerImage(images: Float32Array, recon: Float32Array, perImage: number): Float64Array {
  if (images.length !== recon.length) throw new Error(`psnr: ${images.length} pixels vs ${recon.length} reconstructed`);
  return meanSquaredErrors(images, recon, perImage).map((mse) => 10 * Math.log10(1 / Math.max(mse, MIN_MSE)));
}

/**
 * The detection threshold at a false-positive rate: the nearest-rank
 * (1 − fpr) quantile of clean scores. An image is flagged when its score
 * exceeds the threshold, so at most ⌊fpr·n⌋ of the calibration images are.
 */
export function thresholdAt(scores: ArrayLike<number>, falsePositiveRate: number): number {
  if (scores.length === 0) throw new Error('thresholdAt: no calibration scores');
  if (!(falsePositiveRate > 0 && falsePositiveRate < 1)) throw new Error(`thresholdAt: false-positive rate ${falsePositiveRate} outside (0, 1)`);
  const sorted = Float64Array.from(scores).sort();
  const rank = Math.ceil((1 - falsePositiveRate) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Fraction of scores above the threshold (the flag rule of src/serving/detection.ts). */
export function flaggedRate(scores: ArrayLike<number>, threshold: number): number {
  let n = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] > threshold || Number.isNaN(scores[i])) n++;
  return scores.length ? n / scores.length : 0;
}
