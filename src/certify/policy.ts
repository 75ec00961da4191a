import type { Manifest } from '../models/manifest';
import { UserError } from '../util/errors';
import type { CertifySettings } from './smoothing';

/**
 * What a certification request may ask for. Certification costs n₀ + n
 * forward passes per image, so the operator bounds n; α is bounded above
 * (the loosest guarantee the operator is willing to sign). n₀ is Cohen et
 * al.'s 100.
 */
export interface CertifyPolicy {
  /** default estimation draws */
  n: number;
  maxN: number;
  n0: number;
  /** default failure probability */
  alpha: number;
  maxAlpha: number;
  /** default noise level */
  sigma: number;
  /** noisy copies per session run */
  batch: number;
}

/** What the operator configures: σ may be left to each set (its smoothing denoiser's σ). */
export type OperatorCertifyPolicy = Omit<CertifyPolicy, 'sigma'> & { sigma?: number };

export const CERTIFY_N0 = 100;
/** σ of a set without a smoothing denoiser, when the operator names none (Cohen et al.'s middle setting) */
export const DEFAULT_SIGMA = 0.25;

/** One set's policy: the operator's σ, else the σ its smoothing denoiser was trained for. */
export function policyForSet(p: OperatorCertifyPolicy, m: Manifest): CertifyPolicy {
  return { ...p, sigma: p.sigma ?? m.smoothing?.sigma ?? DEFAULT_SIGMA };
}
export const MAX_SIGMA = 1;
/** below this α the Clopper-Pearson quantile is still exact, but no n the service allows could certify anything */
export const MIN_ALPHA = 1e-12;

export interface CertifyRequest {
  n?: number;
  alpha?: number;
  sigma?: number;
}

/** The settings a request gets; out-of-bounds values are 400s that name the bound. */
export function resolveCertifySettings(p: CertifyPolicy, q: CertifyRequest): CertifySettings {
  const n = q.n ?? p.n;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`n must be a whole number ≥ 1, got ${n}`);
  if (n > p.maxN) throw new UserError(`n ${n} exceeds the operator's maximum ${p.maxN} draws per image`);
  const alpha = q.alpha ?? p.alpha;
  if (!Number.isFinite(alpha) || alpha < MIN_ALPHA || alpha >= 0.5) throw new UserError(`alpha must be in [${MIN_ALPHA}, 0.5), got ${alpha}`);
  if (alpha > p.maxAlpha) throw new UserError(`alpha ${alpha} exceeds the operator's maximum ${p.maxAlpha} (a weaker guarantee than the service gives)`);
  const sigma = q.sigma ?? p.sigma;
  if (!Number.isFinite(sigma) || sigma <= 0 || sigma > MAX_SIGMA) throw new UserError(`sigma must be in (0, ${MAX_SIGMA}], got ${sigma}`);
  return { n, n0: p.n0, alpha, sigma };
}
