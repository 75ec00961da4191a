import { pairedCounts, mcnemar, wilson } from './statistics';
import { SCORE_EDGES, aucOfHistograms, binOf, emptyHistogram, flagged } from './detection';
import { thresholdAt } from '../pipeline/scores';

/**
 * How well one score tells adversarial from clean, in the service's terms:
 * the AUC (from the binned ROC `s2s eval` draws, so the reports compare),
 * and what an operator gets at the threshold calibrated like the manifest's
 * — the (1 − fpr) quantile of clean held-out training images.
 */
export interface ScoreRates {
  /** AUC: clean scores of the attacked images against all their adversarial examples */
  auc: number | null;
  /** AUC against the successful adversarial examples only */
  aucSuccessful: number | null;
  threshold: number;
  /** clean test images of the selection flagged at the threshold (the calibration's promise, checked out of sample) */
  cleanFlagged: number;
  clean: number;
  cleanRate: number;
  cleanCi: [number, number];
  successful: number;
  /** successful examples flagged at the threshold */
  detected: number;
  detectionRate: number | null;
  detectionCi: [number, number];
  /** per selected image: '1' if its successful example is flagged, '0' if not, '-' if there is none */
  outcomes: string;
  /** scores beyond the last bin edge (1e2): the AUC treats them as ties, so a count > 0 blurs it */
  offGrid: number;
}

export function scoreRates(a: {
  /** scores of the clean held-out training images */
  calibration: ArrayLike<number>;
  falsePositiveRate: number;
  /** per selected test image */
  clean: ArrayLike<number>;
  adversarial: ArrayLike<number>;
  /** image attacked: the judged model got it right clean */
  attacked: ArrayLike<number>;
  /** attack succeeded: attacked, and the judged model gets the example wrong */
  success: ArrayLike<number>;
}): ScoreRates {
  const threshold = thresholdAt(a.calibration, a.falsePositiveRate);
  const cleanHist = emptyHistogram();
  const advHist = emptyHistogram();
  const successHist = emptyHistogram();
  const top = SCORE_EDGES[SCORE_EDGES.length - 1];
  let offGrid = 0;
  let cleanFlagged = 0;
  let successful = 0;
  let detected = 0;
  let outcomes = '';
  const n = a.clean.length;
  for (let i = 0; i < n; i++) {
    if (a.clean[i] >= top) offGrid++;
    if (a.adversarial[i] >= top) offGrid++;
    if (flagged(a.clean[i], threshold)) cleanFlagged++;
    if (a.attacked[i] === 1) {
      cleanHist[binOf(a.clean[i])]++;
      advHist[binOf(a.adversarial[i])]++;
    }
    if (a.success[i] === 1) {
      successful++;
      successHist[binOf(a.adversarial[i])]++;
      const caught = flagged(a.adversarial[i], threshold);
      if (caught) detected++;
      outcomes += caught ? '1' : '0';
    } else outcomes += '-';
  }
  return {
    auc: aucOfHistograms(cleanHist, advHist),
    aucSuccessful: aucOfHistograms(cleanHist, successHist),
    threshold,
    cleanFlagged,
    clean: n,
    cleanRate: n > 0 ? cleanFlagged / n : 0,
    cleanCi: wilson(cleanFlagged, n),
    successful,
    detected,
    detectionRate: successful > 0 ? detected / successful : null,
    detectionCi: wilson(detected, successful),
    outcomes,
    offGrid,
  };
}

/**
 * Paired comparison of two scores' detections of the same successful
 * examples: exact McNemar on the examples only one of them flags.
 */
export function compareDetections(a: ScoreRates, b: ScoreRates): { onlyA: number; onlyB: number; pValue: number } {
  const keep = (s: string) => s.replace(/-/g, '');
  const c = pairedCounts(keep(a.outcomes), keep(b.outcomes));
  return { onlyA: c.onlyA, onlyB: c.onlyB, pValue: mcnemar(c.onlyA, c.onlyB) };
}
