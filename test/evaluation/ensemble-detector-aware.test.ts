import { join } from 'node:path';
import { parseNoise } from '../../src/attacks/noise';
import { EnsembleResults, parseEnsembleSettings, runEnsemble } from '../../src/evaluation/ensemble';
import { FASHION_SMALL } from './model-set';

/**
 * The detector-aware ensemble setting on the committed default set (6
 * images, APGD-CE with 5 iterations): gradients of L(f) + L(f ∘ s), judged
 * on f ∘ s, scored by the set's detector; it costs two gradient passes per
 * step, and it refuses a noise layer it could not model.
 */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');
const base = {
  models,
  data: FASHION_SMALL,
  members: ['apgd-ce' as const],
  params: { iterations: 5, restarts: 1, targetClasses: 2 },
  eps: [0.1],
  limit: 6,
  seed: 5,
  batchSize: 6,
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
    expect(row).toMatchObject({ source: 'f+fs', target: 'fs', eps: 0.1, n: 6 });
    expect(row.cleanCorrect).toBe(whitebox.rows[0].cleanCorrect);
    expect(row.members[0].attacked).toBe(row.cleanCorrect);
  });

  it('is scored by the detector, and "robust or detected" follows from the per-image scores', () => {
    const d = aware.detection!;
    const x = d.rows.find((r) => r.setting === 'detector-aware')!;
    const row = aware.rows.find((r) => r.setting === 'detector-aware')!;
    expect(x.attacked).toBe(row.cleanCorrect);
    x.scores.forEach((s, i) => {
      const ok = row.outcomes[i] === '1' || (s !== null && s > d.threshold);
      expect(x.outcomes[i]).toBe(ok ? '1' : '0');
    });
    expect(x.robustOrDetected).toBeGreaterThanOrEqual(row.robust);
  });

  it('counts two gradient passes per step: one through f, one through f ∘ s', () => {
    expect(aware.run.gradientPasses).toBe(2 * whitebox.run.gradientPasses);
  });

  it('refuses a noise layer: its refusal rule would not see the draw the detector sees', async () => {
    await expect(runEnsemble({ ...base, settings: parseEnsembleSettings('whitebox,detector-aware'), noise: parseNoise('gaussian:0.1'), eotSamples: 1 })).rejects.toThrow(/without a noise layer/);
  });
});
