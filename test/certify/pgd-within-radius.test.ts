import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { streamRng } from '../../src/attacks/seeding';
import { buildBaseClassifier } from '../../src/certify/base-classifier';
import { BaseSession, openBaseSession } from '../../src/certify/base-session';
import { seededNoise } from '../../src/certify/noise-source';
import { drawSampler } from '../../src/certify/sampler';
import { smoothedPgdL2 } from '../../src/certify/smoothed-pgd';
import { ABSTAIN, certify, predict } from '../../src/certify/smoothing';
import type { Manifest } from '../../src/models/manifest';
import { mlpClassifier } from '../attacks/models';

/**
 * Monte Carlo check of the certificate: on a small nonlinear classifier (a
 * random MLP on 4×4 images), L2 PGD with EOT against the smoothed
 * classifier, confined to each image's certified radius, must never reach a
 * point where g (estimated by PREDICT with 20,000 draws) confidently answers
 * another class. The same attack given 1.2 × the radius + 0.05 flips most
 * of the same images (all 12 of 12 when written), so the attack is strong
 * enough for the check to fail, and the certified radii are nearly tight.
 */

const SHAPE: [number, number, number] = [1, 4, 4];
const K = 3;
const SIGMA = 0.25;
const manifest = { name: 'mlp', input: { channels: 1, height: 4, width: 4, layout: 'NCHW', range: [0, 1], mean: [0], std: [1] }, labels: ['a', 'b', 'c'] } as unknown as Manifest;

let h: BaseSession;
let oracle: OnnxGradientOracle;
beforeAll(async () => {
  const f = mlpClassifier(SHAPE, K, 32, 11);
  h = await openBaseSession(buildBaseClassifier(manifest, { classifier: f }, 'f'), SHAPE, { label: 'mlp h', intraOpThreads: 1 });
  oracle = OnnxGradientOracle.fromForward('mlp', f, { intraOpThreads: 1 });
});
afterAll(async () => {
  await h.session.release();
  await oracle.release();
});

const sampler = (x: Float32Array, key: string) => drawSampler({ pixels: x, sigma: SIGMA, classes: K, batch: 5000, noise: seededNoise(3, key), run: h.run });

it('finds no adversarial example for the smoothed classifier within a certified radius', async () => {
  const rng = streamRng(21, 'images');
  let certified = 0;
  let flippedOutside = 0;
  for (let i = 0; i < 16; i++) {
    const x = Float32Array.from({ length: 16 }, () => rng.uniform());
    const c = await certify(sampler(x, `x${i}`), { sigma: SIGMA, n0: 100, n: 5000, alpha: 0.001 });
    if (c.prediction === ABSTAIN || c.radius < 0.05) continue;
    certified++;
    const inside = await smoothedPgdL2(oracle, x, c.prediction, { radius: c.radius, sigma: SIGMA, steps: 20, samples: 64, seed: i });
    const dist = Math.hypot(...Array.from(inside, (v, j) => v - x[j]));
    expect(dist).toBeLessThanOrEqual(c.radius + 1e-5);
    const g = await predict(sampler(inside, `adv${i}`), 20000, 0.001);
    expect([i, g.prediction === ABSTAIN || g.prediction === c.prediction]).toEqual([i, true]);

    const outside = await smoothedPgdL2(oracle, x, c.prediction, { radius: 1.2 * c.radius + 0.05, sigma: SIGMA, steps: 20, samples: 64, seed: i });
    const far = await predict(sampler(outside, `far${i}`), 20000, 0.001);
    if (far.prediction !== ABSTAIN && far.prediction !== c.prediction) flippedOutside++;
  }
  expect(certified).toBeGreaterThanOrEqual(5);
  expect(flippedOutside).toBeGreaterThanOrEqual(Math.ceil(certified / 2));
});
