import { compareAtRadius, comparisonMarkdown } from '../../src/certify/compare';
import { CertifyResults, ImageCertificate, ModelCertification, summarise } from '../../src/certify/results';

/** Paired comparison of two certifications at one radius, on outcomes made up to known counts. */

const cert = (row: number, correct: boolean, radius: number): ImageCertificate => ({ row, label: 0, prediction: correct ? 0 : 1, radius, correct, countA: 0, pALower: 0, seconds: 0 });
const model = (name: string, images: ImageCertificate[], sigma = 0.25): ModelCertification => ({ name, base: name, sigma, images, summary: summarise(images) });

/** 100 images: A certifies rows 0–59 at 0.6, B rows 10–79 at 0.6; row 90 is correct for both but only at 0.3. */
function results(): CertifyResults {
  const rows = Array.from({ length: 100 }, (_, i) => i);
  const a = rows.map((i) => cert(i, i < 60 || i === 90, i === 90 ? 0.3 : 0.6));
  const b = rows.map((i) => cert(i, (i >= 10 && i < 80) || i === 90, i === 90 ? 0.3 : 0.6));
  return {
    kind: 's2s-certify',
    version: 1,
    modelSet: { name: 'm', version: '1', dir: '/m' },
    settings: { n0: 100, n: 1000, alpha: 0.001, seed: 0, batch: 1000, sigmas: [0.25], noise: 'seeded' },
    data: { source: 'made up', size: 100, rows },
    models: [model('A', a), model('B', b)],
    complete: true,
  };
}

it('counts the pairs at the radius, tests them exactly and bounds the ratio', () => {
  const c = compareAtRadius(results(), 'A', 'B', 0.5, { resamples: 4000, seed: 1 });
  // 50 both (rows 10–59), 10 only A (0–9), 20 only B (60–79); row 90 is below the radius for both.
  expect([c.both, c.onlyA, c.onlyB, c.images]).toEqual([50, 10, 20, 100]);
  expect([c.accuracyA, c.accuracyB, c.ratio]).toEqual([0.6, 0.7, 60 / 70]);
  // McNemar on 10 vs 20 discordant pairs: 2·P[Bin(30, ½) ≤ 10] = 0.0987 (SciPy binomtest)
  expect(c.p).toBeCloseTo(0.0987, 4);
  expect(c.ratioInterval[0]).toBeLessThan(c.ratio);
  expect(c.ratioInterval[1]).toBeGreaterThan(c.ratio);
  // The pairs are positively correlated, so the paired interval is narrower than [0.6 − 0.1, 0.6 + 0.1] / 0.7.
  expect(c.ratioInterval[1] - c.ratioInterval[0]).toBeLessThan(0.2 / 0.7);
  // Same seed, same interval; at radius 0.25 row 90 counts for both.
  expect(compareAtRadius(results(), 'A', 'B', 0.5, { resamples: 4000, seed: 1 }).ratioInterval).toEqual(c.ratioInterval);
  expect(compareAtRadius(results(), 'A', 'B', 0.25, { resamples: 100 }).both).toBe(51);
  expect(comparisonMarkdown([c])).toMatch(/\| A \| B \| 0\.5 \| 100 \| 60\.0 % \| 70\.0 % \| 10 \| 20 \| 0\.857 \(/);
});

it('refuses names it does not have, models on other images, and a name certified at several σ', () => {
  const r = results();
  expect(() => compareAtRadius(r, 'A', 'C', 0.5)).toThrow(/no model 'C' in this certify.json \(models: A, B\)/);
  const shifted = { ...r, models: [r.models[0], model('B', r.models[1].images.map((c) => ({ ...c, row: c.row + 1 })))] };
  expect(() => compareAtRadius(shifted, 'A', 'B', 0.5)).toThrow(/not certified on the same images/);
  const twice = { ...r, models: [...r.models, model('A', r.models[0].images, 0.5)] };
  expect(() => compareAtRadius(twice, 'A', 'B', 0.5)).toThrow(/certified at several σ \(0\.25, 0\.5\)/);
});
