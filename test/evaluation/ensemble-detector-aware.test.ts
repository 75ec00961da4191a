import { join } from 'node:path';
import { parseNoise } from '../../src/attacks/noise';
import { EnsembleResults, parseEnsembleSettings, runEnsemble } from '../../src/evaluation/ensemble';
import { FASHION_SMALL } from './model-set';

/**
 * The detector-aware ensemble setting on the committed default set (8
 * images, APGD-CE with 10 iterations, ε = 0.15): gradients of L(f) + L(f ∘ s), judged
 * on f ∘ s, scored by the set's detector; it costs two gradient passes per
 * step, and it refuses a noise layer it could not model.
 */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');
const base = {
  models,
  data: FASHION_SMALL,
  members: ['apgd-ce' as const],
  params: { iterations: 10, restarts: 1, targetClasses: 2 },
  eps: [0.15],
  limit: 8,
  seed: 5,
  batchSize: 8,
  threads: 1,
  progress: false,
  provider: 'cpu' as const,
};

describe('the detector-aware ensemble setting (committed default set)', () => {
  let aware: EnsembleResults;
  let whitebox: EnsembleResults;
  beforeAll(async () => {
    aware = await runEnsemble({ ...base, settings: parseEnsembleSettings('detector-aware') });
    whitebox = await runEnsemble({ ...base, settings: parseEnsembleSettings('whitebox') });
  }, 300_000);

  it('attacks f and f ∘ s together and judges f ∘ s, on the images f ∘ s gets right', () => {
    const row = aware.rows.find((r) => r.setting === 'detector-aware')!;
    expect(row).toMatchObject({ source: 'f+fs', target: 'fs', eps: 0.15, n: 8 });
    expect(row.cleanCorrect).toBe(whitebox.rows[0].cleanCorrect);
    expect(row.members[0].attacked).toBe(row.cleanCorrect);
  });

  it('counts a flagged example as a failed attack: its robust count is "robust or detected", and every break is unflagged', () => {
    const d = aware.detection!;
    const x = d.rows.find((r) => r.setting === 'detector-aware')!;
    const row = aware.rows.find((r) => r.setting === 'detector-aware')!;
    expect(x.attacked).toBe(row.cleanCorrect);
    expect(x.outcomes).toBe(row.outcomes);
    expect(x.robustOrDetected).toBe(row.robust);
    // the run has breaks to check (at ε = 0.15 the set does not hold every image)
    expect(row.robust).toBeLessThan(row.cleanCorrect);
    x.scores.forEach((s, i) => {
      if (row.outcomes[i] === '0' && s !== null) expect(s).toBeLessThanOrEqual(d.threshold);
    });
  });

  it('counts two gradient passes per step: one through f, one through f ∘ s', () => {
    expect(aware.run.gradientPasses).toBe(2 * whitebox.run.gradientPasses);
  });

  it('refuses a noise layer: its refusal rule would not see the draw the detector sees', async () => {
    await expect(runEnsemble({ ...base, settings: parseEnsembleSettings('whitebox,detector-aware'), noise: parseNoise('gaussian:0.1'), eotSamples: 1 })).rejects.toThrow(/without a noise layer/);
    await expect(runEnsemble({ ...base, settings: parseEnsembleSettings('detector-aware-features'), noise: parseNoise('gaussian:0.1'), eotSamples: 1 })).rejects.toThrow(/without a noise layer/);
  });
});

describe('the detector-aware-features ensemble setting (committed default set)', () => {
  let features: EnsembleResults;
  let whitebox: EnsembleResults;
  beforeAll(async () => {
    // 30 iterations: the penalty holds the examples so close to agreement that 10 break none of these 8 images
    const more = { ...base, params: { ...base.params, iterations: 30 } };
    features = await runEnsemble({ ...more, settings: parseEnsembleSettings('detector-aware-features') });
    whitebox = await runEnsemble({ ...more, settings: parseEnsembleSettings('whitebox') });
  }, 300_000);

  it('ascends L(f ∘ s) less the feature-space error and judges f ∘ s behind the KL: every break is unflagged, a flagged example is a failed attack', () => {
    const row = features.rows.find((r) => r.setting === 'detector-aware-features')!;
    expect(row).toMatchObject({ source: 'fs-features', target: 'fs', eps: 0.15, n: 8 });
    expect(row.cleanCorrect).toBe(whitebox.rows[0].cleanCorrect);
    const d = features.detection!;
    const x = d.rows.find((r) => r.setting === 'detector-aware-features')!;
    expect(x.robustOrDetected).toBe(row.robust);
    expect(row.robust).toBeLessThan(row.cleanCorrect);
    x.scores.forEach((s, i) => {
      if (row.outcomes[i] === '0' && s !== null) expect(s).toBeLessThanOrEqual(d.threshold);
    });
  });

  it('records the penalty’s unit τ, the clean selected images’ feature-mse at the 95th percentile, and counts two gradient passes per step', () => {
    expect(features.config.featurePenalty).toMatchObject({ weight: 1, quantile: 0.95 });
    expect(features.config.featurePenalty!.threshold).toBeGreaterThan(0);
    expect(whitebox.config.featurePenalty).toBeUndefined();
    expect(features.run.gradientPasses).toBe(2 * whitebox.run.gradientPasses);
  });
});
