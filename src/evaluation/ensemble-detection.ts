import { aucOfHistograms, binOf, emptyHistogram, flagged } from './detection';
import { ModelKey } from './settings';
import { wilson } from './statistics';

/**
 * The KL detector against the ensemble's adversarial examples. The detector
 * belongs to the model set, not to a setting: it looks at the input the
 * service receives, so it is scored wherever the judged model is a service
 * of this set (f or f ∘ s). The plain-AE baseline is another service, whose
 * own detector would use the AE, so its settings are left out.
 *
 * Per image the score is that of the ensemble's final example: the one of
 * the member that broke the image, or the last member's final iterate for
 * an image that survived them all. Images the judged model gets wrong clean
 * are not attacked and have no adversarial score.
 */
export const ENSEMBLE_DETECTOR = 'KL(softmax f(x) ‖ softmax f(s(x + noise)))';

export function detectorJudges(target: ModelKey): boolean {
  return target === 'f' || target === 'fs';
}

export interface EnsembleDetectionRow {
  setting: string;
  eps: number;
  /** images attacked: those the judged model classifies correctly clean */
  attacked: number;
  /** of those, the ones the ensemble broke */
  successful: number;
  /** detector AUC: clean scores of the attacked images against their adversarial scores */
  auc: number | null;
  /** the same, against the successful adversarial examples only */
  aucSuccessful: number | null;
  /** successful examples the detector flags at the manifest's threshold */
  flaggedSuccessful: number;
  /** flaggedSuccessful / successful */
  detectionRate: number | null;
  /** images still classified correctly, or whose successful example is flagged */
  robustOrDetected: number;
  /** robustOrDetected / n: the accuracy of an operator who rejects flagged inputs */
  accuracy: number;
  /** 95 % Wilson interval of `accuracy` */
  ci: [number, number];
  /** per selected image: the final example's score; null where the image was not attacked */
  scores: (number | null)[];
  /** per selected image: '1' robust or detected, '0' not */
  outcomes: string;
}

/** A combined setting (ensemble.ts ENSEMBLE_COMBINED): robust or detected under every part. */
export interface EnsembleDetectionCombined {
  setting: string;
  eps: number;
  robustOrDetected: number;
  accuracy: number;
  ci: [number, number];
  outcomes: string;
}

export interface EnsembleDetection {
  detector: string;
  threshold: number;
  /** per selected image: the clean image's score */
  clean: number[];
  /** clean images flagged: what the operator's rejection costs on clean inputs */
  cleanFlagged: number;
  rows: EnsembleDetectionRow[];
  combined: EnsembleDetectionCombined[];
}

/**
 * One setting at one ε. `adversarial[i]` is null where image i was not
 * attacked (cleanOk[i] = 0); `robust` is the ensemble's verdict. The AUCs
 * come from the same binned ROC as `s2s eval`'s, so the two reports compare.
 */
export function detectionRow(a: {
  setting: string;
  eps: number;
  threshold: number;
  clean: ArrayLike<number>;
  adversarial: readonly (number | null)[];
  cleanOk: ArrayLike<number>;
  robust: ArrayLike<number>;
}): EnsembleDetectionRow {
  const n = a.adversarial.length;
  const cleanHist = emptyHistogram();
  const advHist = emptyHistogram();
  const successHist = emptyHistogram();
  let attacked = 0;
  let successful = 0;
  let flaggedSuccessful = 0;
  let saved = 0;
  const outcomes: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = a.adversarial[i];
    const broken = a.cleanOk[i] === 1 && a.robust[i] !== 1;
    if (a.cleanOk[i] === 1) {
      if (s === null) throw new Error(`detectionRow: image ${i} was attacked but has no adversarial score`);
      attacked++;
      cleanHist[binOf(a.clean[i])]++;
      advHist[binOf(s)]++;
    }
    const caught = broken && flagged(s!, a.threshold);
    if (broken) {
      successful++;
      successHist[binOf(s!)]++;
      if (caught) flaggedSuccessful++;
    }
    const ok = a.robust[i] === 1 || caught;
    if (ok) saved++;
    outcomes.push(ok ? '1' : '0');
  }
  return {
    setting: a.setting,
    eps: a.eps,
    attacked,
    successful,
    auc: aucOfHistograms(cleanHist, advHist),
    aucSuccessful: aucOfHistograms(cleanHist, successHist),
    flaggedSuccessful,
    detectionRate: successful > 0 ? flaggedSuccessful / successful : null,
    robustOrDetected: saved,
    accuracy: n > 0 ? saved / n : 0,
    ci: wilson(saved, n),
    scores: [...a.adversarial],
    outcomes: outcomes.join(''),
  };
}

/** The worst case over several settings: an image counts only if it is robust or detected in each. */
export function combinedDetection(setting: string, eps: number, parts: readonly EnsembleDetectionRow[]): EnsembleDetectionCombined {
  const n = parts[0].outcomes.length;
  const outcomes = Array.from({ length: n }, (_, i) => (parts.every((p) => p.outcomes[i] === '1') ? '1' : '0')).join('');
  const saved = [...outcomes].filter((c) => c === '1').length;
  return { setting, eps, robustOrDetected: saved, accuracy: n > 0 ? saved / n : 0, ci: wilson(saved, n), outcomes };
}
