import { ABSTAIN } from './smoothing';

/**
 * certify.json: per model (a base classifier at one σ), per image, what
 * CERTIFY answered, and the certified accuracy at the radii the literature
 * reports (Cohen et al.'s Table/Figure: fraction of test images whose
 * prediction is correct AND certified at radius ≥ r).
 */

export const CERTIFY_FILE = 'certify.json';
export const REPORT_RADII = [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0];

export interface ImageCertificate {
  /** row of the test set */
  row: number;
  label: number;
  prediction: number | typeof ABSTAIN;
  radius: number;
  correct: boolean;
  /** count of the selected class among the n estimation draws */
  countA: number;
  pALower: number;
  seconds: number;
}

export interface ModelCertification {
  /** e.g. `f∘s`, `f`, `f (gaussian-augmented σ=0.25)` */
  name: string;
  /** where h came from: the set's base kind or a classifier file */
  base: string;
  /** sha256 of the classifier or denoiser file, for bases given as files (runs since --reuse) */
  sha256?: string;
  sigma: number;
  /** x + δ clipped to [0, 1] before h */
  clip?: boolean;
  images: ImageCertificate[];
  summary: CertificationSummary;
}

export interface CertificationSummary {
  images: number;
  abstained: number;
  /** certified accuracy at each radius of REPORT_RADII (keys as strings: "0.5") */
  certifiedAccuracy: Record<string, number>;
  /** mean radius over correctly certified images */
  meanCorrectRadius: number;
  secondsPerImage: number;
}

export interface CertifyResults {
  kind: 's2s-certify';
  version: 1;
  modelSet: { name: string; version: string; dir: string };
  settings: { n0: number; n: number; alpha: number; seed: number; batch: number; sigmas: number[]; limit?: number; noise: 'seeded'; clip?: boolean };
  data: { source: string; size: number; rows: number[] };
  models: ModelCertification[];
  /** wall clock and CPU time of the whole run */
  cost?: { seconds: number; cpuSeconds: number; threads: number; reusedImages?: number };
  complete: boolean;
}

/** Fraction of images classified correctly with radius ≥ r (abstentions count as wrong). */
export function certifiedAccuracy(images: readonly Pick<ImageCertificate, 'correct' | 'radius'>[], r: number): number {
  if (images.length === 0) return 0;
  return images.filter((c) => c.correct && c.radius >= r).length / images.length;
}

export function summarise(images: readonly ImageCertificate[]): CertificationSummary {
  const correct = images.filter((c) => c.correct);
  return {
    images: images.length,
    abstained: images.filter((c) => c.prediction === ABSTAIN).length,
    certifiedAccuracy: Object.fromEntries(REPORT_RADII.map((r) => [String(r), certifiedAccuracy(images, r)])),
    meanCorrectRadius: correct.length ? correct.reduce((a, c) => a + c.radius, 0) / correct.length : 0,
    secondsPerImage: images.length ? images.reduce((a, c) => a + c.seconds, 0) / images.length : 0,
  };
}
