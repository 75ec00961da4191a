/**
 * The valid image set: pixels in [0, 1] on the 8-bit grid k/255, inside the
 * L∞ ball of radius ε around the clean image. docs/protocol.md ("Attacks"): every adversarial
 * image is clipped and cast to the 8-bit grid before it is evaluated.
 */

// Bound once: these loops run per pixel, and global lookups are slow inside vm contexts (jest's).
const { round, max, min, ceil, floor } = Math;
const { isFinite } = Number;

export const LEVELS = 255;

/**
 * Slack, in grid levels, for float32 images: k/255 stored as float32 is off
 * by up to ~1e-5 levels, which must not push an ε-ball edge that falls on
 * the grid (ε = 4/255) to the next level.
 */
const SLACK = 1e-3;

/** x' ← min(max(x', x - ε, 0), x + ε, 1), in place. */
export function projectLinf(adv: Float32Array, x: Float32Array, eps: number): void {
  for (let i = 0; i < adv.length; i++) {
    const lo = max(0, x[i] - eps);
    const hi = min(1, x[i] + eps);
    const v = adv[i];
    adv[i] = v < lo ? lo : v > hi ? hi : v;
  }
}

/**
 * The image that is actually evaluated: rounded to the nearest grid value
 * that lies inside the ε-ball and [0, 1]. Plain rounding could step just
 * outside the ball (ε = 0.01 is 2.55 levels: 3 levels would be out), so the
 * grid point is clamped to the ball's grid range. If the ball holds no grid
 * point (ε < 1/255 around an off-grid pixel) the pixel is rounded and its true
 * L∞ is what the metrics report.
 */
export function quantize(adv: Float32Array, x: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(adv.length);
  for (let i = 0; i < adv.length; i++) {
    const lo = max(0, ceil((x[i] - eps) * LEVELS - SLACK));
    const hi = min(LEVELS, floor((x[i] + eps) * LEVELS + SLACK));
    const a = adv[i];
    let k = isFinite(a) ? round(a * LEVELS) : round(x[i] * LEVELS);
    if (lo > hi) k = min(LEVELS, max(0, round(x[i] * LEVELS)));
    else k = k < lo ? lo : k > hi ? hi : k;
    out[i] = k / LEVELS;
  }
  return out;
}

/** Rounds to the 8-bit grid and clips to [0, 1], with no ball (for unbounded perturbations). */
export function toGrid(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const k = round(a[i] * LEVELS);
    out[i] = (k < 0 ? 0 : k > LEVELS ? LEVELS : k) / LEVELS;
  }
  return out;
}

/** x' ← x' + step·sign(g), in place; sign(0) = 0 (a pixel with no gradient stays put). */
export function signStep(adv: Float32Array, grad: Float32Array, step: number): void {
  for (let i = 0; i < adv.length; i++) {
    const g = grad[i];
    if (g > 0) adv[i] += step;
    else if (g < 0) adv[i] -= step;
  }
}
