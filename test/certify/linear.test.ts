import normalCdf = require('@stdlib/stats-base-dists-normal-cdf');
import { lowerConfidenceBound, radiusFor } from '../../src/certify/bounds';
import { buildBaseClassifier } from '../../src/certify/base-classifier';
import { BaseSession, openBaseSession } from '../../src/certify/base-session';
import { cryptoNoise, seededNoise } from '../../src/certify/noise-source';
import { drawSampler } from '../../src/certify/sampler';
import { ABSTAIN, certify, predict } from '../../src/certify/smoothing';
import type { Manifest } from '../../src/models/manifest';
import { linearClassifier } from '../attacks/models';

/**
 * A linear base classifier h(z) = [w·z + b > 0] (logits [0, w·z + b]) has a
 * smoothed classifier known in closed form: P(h(x + δ) = 1) = Φ(d/σ) with d
 * = (w·x + b)/‖w‖ the signed distance to the hyperplane, so g's exact
 * certified radius is σ·Φ⁻¹(pA) = |d|. CERTIFY, run through the real ONNX
 * base-classifier graph, must predict sign(d) and certify at most |d|
 * (with probability ≥ 1 − α), close to it with 10,000 draws.
 */

const SHAPE: [number, number, number] = [1, 4, 4];
const D = 16;
const manifest = {
  name: 'linear',
  input: { channels: 1, height: 4, width: 4, layout: 'NCHW', range: [0, 1], mean: [0], std: [1] },
  labels: ['below', 'above'],
} as unknown as Manifest;

// w with ‖w‖ = 2, not axis-aligned, so every pixel's noise matters.
const w = Array.from({ length: D }, (_, i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? -0.5 : 0.25));
const norm = Math.hypot(...w);
const wUnit = w.map((v) => (2 * v) / norm);
const b = -0.3;

/** An image at signed distance d from the hyperplane: x = x0 + (d − (w·x0 + b)/‖w‖)·w/‖w‖. */
function imageAt(d: number): Float32Array {
  const x0 = Array.from({ length: D }, (_, i) => 0.5 + 0.02 * (i % 5));
  const dist0 = (wUnit.reduce((a, wi, i) => a + wi * x0[i], 0) + b) / 2;
  return Float32Array.from(x0.map((v, i) => v + (d - dist0) * (wUnit[i] / 2)));
}

let h: BaseSession;
beforeAll(async () => {
  const f = linearClassifier([new Array(D).fill(0), wUnit], [0, b], SHAPE);
  h = await openBaseSession(buildBaseClassifier(manifest, { classifier: f }, 'f'), SHAPE, { label: 'linear h', intraOpThreads: 1 });
});
afterAll(() => h.session.release());

const sampler = (pixels: Float32Array, sigma: number, seed: number, batch = 1000, noise = seededNoise(seed, 'linear')) =>
  drawSampler({ pixels, sigma, classes: 2, batch, noise, run: h.run });

describe('CERTIFY on a linear classifier (closed form)', () => {
  const sigma = 0.25;
  const settings = { sigma, n0: 100, n: 10000, alpha: 0.001 };

  it('predicts the side of the hyperplane and certifies just under the distance to it', async () => {
    for (const [d, seed] of [[0.5, 1], [-0.3, 2], [0.9, 3]] as const) {
      const c = await certify(sampler(imageAt(d), sigma, seed), settings);
      expect(c.prediction).toBe(d > 0 ? 1 : 0);
      // The exact smoothed radius is |d|; the certificate may not exceed it.
      expect(c.radius).toBeLessThanOrEqual(Math.abs(d));
      // The count is binomial(n, Φ(|d|/σ)): within 5 standard deviations of its mean …
      const p = normalCdf(Math.abs(d) / sigma, 0, 1);
      const sd = Math.sqrt(settings.n * p * (1 - p));
      expect(Math.abs(c.countA - settings.n * p)).toBeLessThan(5 * sd + 1);
      // … so the radius is at least what a count 5 sd low would certify (10,000 draws at α = 0.001 lose little).
      const low = Math.min(settings.n, Math.floor(settings.n * p - 5 * sd));
      expect(c.radius).toBeGreaterThanOrEqual(radiusFor(sigma, lowerConfidenceBound(low, settings.n, settings.alpha)));
      if (Math.abs(d) < 0.6) expect(c.radius).toBeGreaterThan(Math.abs(d) - 0.06);
    }
  });

  it('abstains on the hyperplane (pA = ½)', async () => {
    const c = await certify(sampler(imageAt(0), sigma, 4), settings);
    expect(c.prediction).toBe(ABSTAIN);
    expect(c.radius).toBe(0);
    expect(c.pALower).toBeLessThan(0.5);
  });

  it('gives the same counts whatever the batch size (the draws are a stream)', async () => {
    const x = imageAt(0.1);
    const a = await certify(sampler(x, sigma, 5, 1000), { ...settings, n: 3000 });
    const c = await certify(sampler(x, sigma, 5, 37), { ...settings, n: 3000 });
    expect(c).toEqual(a);
  });

  it('draws selection and estimation noise from separate streams', () => {
    const f = seededNoise(9, 'img');
    const s = new Float32Array(64);
    const e = new Float32Array(64);
    f('selection').fill(s, 0, 64, 1);
    f('estimation').fill(e, 0, 64, 1);
    expect(Array.from(s)).not.toEqual(Array.from(e));
  });

  it('certifies with CSPRNG noise too (serving), within the same bounds', async () => {
    const c = await certify(sampler(imageAt(0.5), sigma, 0, 1000, cryptoNoise), settings);
    expect(c.prediction).toBe(1);
    expect(c.radius).toBeLessThanOrEqual(0.5);
    expect(c.radius).toBeGreaterThan(0.44);
  });
});

describe('PREDICT on a linear classifier', () => {
  it('returns the side when it is clear and abstains on the hyperplane', async () => {
    const clear = await predict(sampler(imageAt(0.2), 0.25, 6), 1000, 0.001);
    expect(clear.prediction).toBe(1);
    expect(clear.pValue).toBeLessThan(0.001);
    const tie = await predict(sampler(imageAt(0), 0.25, 7), 1000, 0.001);
    expect(tie.prediction).toBe(ABSTAIN);
    expect(tie.counts[0] + tie.counts[1]).toBe(1000);
  });
});

describe('CSPRNG noise', () => {
  it('has mean 0 and standard deviation σ', () => {
    const out = new Float32Array(200000);
    cryptoNoise('estimation').fill(out, 0, out.length, 0.5);
    const mean = out.reduce((a, v) => a + v, 0) / out.length;
    const sd = Math.sqrt(out.reduce((a, v) => a + (v - mean) ** 2, 0) / out.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(sd - 0.5)).toBeLessThan(0.01);
  });
});

describe('clipping x + δ (base classifier f(clip(z)))', () => {
  it('feeds the classifier [0, 1] values', async () => {
    const f = linearClassifier([new Array(D).fill(0), new Array(D).fill(1)], [0, -0.5], SHAPE);
    const clipped = await openBaseSession(buildBaseClassifier(manifest, { classifier: f }, 'f', true), SHAPE, { label: 'clipped', intraOpThreads: 1 });
    const plain = await openBaseSession(buildBaseClassifier(manifest, { classifier: f }, 'f'), SHAPE, { label: 'plain', intraOpThreads: 1 });
    try {
      // Σ of 15 pixels at 0.1 is 1.5; the first pixel at −4 makes the plain sum negative, clipped to 0 it does not.
      const v = new Float32Array(D).fill(0.1);
      v[0] = -4;
      expect(Array.from(await plain.run(v, 1), Number)).toEqual([0]);
      expect(Array.from(await clipped.run(v, 1), Number)).toEqual([1]);
    } finally {
      await clipped.session.release();
      await plain.session.release();
    }
  });
});
