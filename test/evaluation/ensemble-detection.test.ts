import { combinedDetection, detectionRow } from '../../src/evaluation/ensemble-detection';
import { klScores } from '../../src/pipeline/scores';

/**
 * Known answers for the detector's table of the ensemble: scores worked out
 * by hand, ROC areas of separable, identical and reversed score sets, and
 * the "robust or detected" tally of an operator who rejects flagged inputs.
 */
describe('the KL detector against the ensemble (known answers)', () => {
  it('scores by hand: p = (½, ½), q = (¾, ¼) gives KL = ½ ln(4/3)', () => {
    // logits (0, 0) and (ln 3, 0)
    const s = klScores(Float32Array.of(0, 0), Float32Array.of(Math.log(3), 0), 2);
    expect(s[0]).toBeCloseTo(0.5 * Math.log(4 / 3), 6);
  });

  // Four images: 0 survives, 1 and 2 are broken (1 with a loud example, 2 with a quiet one), 3 is wrong clean.
  const threshold = 0.1;
  const clean = [0.001, 0.002, 0.003, 0.5];
  const cleanOk = [1, 1, 1, 0];
  const robust = [1, 0, 0, 0];

  it('separable scores: AUC 1, and only the loud successful example is caught', () => {
    const r = detectionRow({ setting: 'whitebox', eps: 0.05, threshold, clean, adversarial: [0.01, 5, 0.05, null], cleanOk, robust });
    expect(r.attacked).toBe(3);
    expect(r.successful).toBe(2);
    expect(r.auc).toBe(1);
    expect(r.aucSuccessful).toBe(1);
    expect(r.flaggedSuccessful).toBe(1);
    expect(r.detectionRate).toBe(0.5);
    // image 0 is robust, image 1 is caught; image 2 slips through, image 3 was wrong to begin with
    expect(r.outcomes).toBe('1100');
    expect(r.robustOrDetected).toBe(2);
    expect(r.accuracy).toBe(0.5);
    expect(r.ci[0]).toBeLessThan(0.5);
    expect(r.ci[1]).toBeGreaterThan(0.5);
    expect(r.scores).toEqual([0.01, 5, 0.05, null]);
  });

  it('identical score sets give AUC ½; adversarial scores below every clean one give 0', () => {
    const same = detectionRow({ setting: 'whitebox', eps: 0.05, threshold, clean, adversarial: [0.001, 0.002, 0.003, null], cleanOk, robust });
    expect(same.auc).toBeCloseTo(0.5, 12);
    const below = detectionRow({ setting: 'whitebox', eps: 0.05, threshold, clean, adversarial: [1e-6, 1e-6, 1e-6, null], cleanOk, robust });
    expect(below.auc).toBe(0);
    expect(below.flaggedSuccessful).toBe(0);
    expect(below.outcomes).toBe('1000');
  });

  it('a robust image whose example is flagged counts once; a NaN score is flagged, as the service does', () => {
    const r = detectionRow({ setting: 'graybox', eps: 0.1, threshold, clean, adversarial: [7, NaN, 0.2, null], cleanOk, robust });
    expect(r.flaggedSuccessful).toBe(2);
    expect(r.robustOrDetected).toBe(3);
    expect(r.outcomes).toBe('1110');
  });

  it('with nothing broken there is no successful-only AUC or rate, and robust-or-detected is the robust accuracy', () => {
    const r = detectionRow({ setting: 'whitebox', eps: 0.05, threshold, clean, adversarial: [0.01, 0.02, 0.03, null], cleanOk, robust: [1, 1, 1, 0] });
    expect(r.successful).toBe(0);
    expect(r.aucSuccessful).toBeNull();
    expect(r.detectionRate).toBeNull();
    expect(r.auc).toBe(1);
    expect(r.robustOrDetected).toBe(3);
  });

  it('an attacked image without a score is a bug, not a silent zero', () => {
    expect(() => detectionRow({ setting: 'whitebox', eps: 0.05, threshold, clean, adversarial: [0.01, null, 0.05, null], cleanOk, robust })).toThrow(/image 1 was attacked/);
  });

  it('a combined setting keeps an image only if it is robust or detected in every part', () => {
    const a = detectionRow({ setting: 'whitebox', eps: 0.05, threshold, clean, adversarial: [0.01, 5, 0.05, null], cleanOk, robust });
    const b = detectionRow({ setting: 'whitebox-bpda', eps: 0.05, threshold, clean, adversarial: [0.01, 0.02, 0.05, null], cleanOk, robust: [1, 0, 1, 0] });
    expect(b.outcomes).toBe('1010');
    const c = combinedDetection('defended', 0.05, [a, b]);
    expect(c.outcomes).toBe('1000');
    expect(c.robustOrDetected).toBe(1);
    expect(c.accuracy).toBe(0.25);
  });
});
