/**
 * Detection (docs/protocol.md, "Detection"): the score is KL(softmax f(x) ‖
 * softmax f(s(x))), computed inside the serving graph; an image whose score
 * exceeds the manifest's calibrated threshold is flagged as adversarial.
 * `annotate` reports the verdict; `reject` refuses the request with 422.
 */
export type DetectionPolicy = 'annotate' | 'reject';
export type Verdict = 'clean' | 'adversarial';

export const DETECTION_POLICIES: readonly DetectionPolicy[] = ['annotate', 'reject'];

export interface Detection {
  score: number;
  threshold: number;
  verdict: Verdict;
}

export function judge(score: number, threshold: number): Detection {
  // NaN (a degenerate classifier output) must not pass as clean.
  const verdict: Verdict = score > threshold || Number.isNaN(score) ? 'adversarial' : 'clean';
  return { score, threshold, verdict };
}
