import Ajv, { ErrorObject } from 'ajv';
import { UserError } from '../util/errors';
import { manifestSchema } from './manifest-schema';

/** models/<set>/manifest.json, schemaVersion 1 (docs/manifest.md). */

export interface FileRef {
  /** relative to the model-set folder */
  path: string;
  /** lowercase hex sha256 of the file's bytes */
  sha256: string;
}

/** One step of the defence chain, applied in order to the (clean) input before the classifier. */
export type DefenceStage =
  | { stage: 'noise' }
  | { stage: 's2snet' }
  | { stage: 'autoencoder' }
  | { stage: 'bitDepth'; bits: number };

export type NoiseKind = 'gaussian' | 'uniform' | 'sign';
export type ResizeFit = 'cover' | 'contain' | 'fill';

export interface InputSpec {
  channels: 1 | 3;
  height: number;
  width: number;
  layout: 'NCHW';
  range: [0, 1];
  /** per channel (or one value for all): the classifier sees (x - mean) / std */
  mean: number[];
  std: number[];
  /** how images of another size are brought to height × width (default cover: scale and centre-crop) */
  resize?: ResizeFit;
}

/**
 * A denoiser trained for randomized smoothing (docs/certification.md): the
 * base classifier of /v1/certify becomes f ∘ d, d = files[denoiser], with
 * x + δ clipped to [0, 1] first when `clip` (as d was trained).
 */
export interface SmoothingSpec {
  /** the σ d was trained for (pixels in [0, 1]); the default σ of the set's certifications */
  sigma: number;
  /** the files key of d (input → reconstruction) */
  denoiser: string;
  clip: boolean;
  /** how d was trained (recipe, steps, seed …); reported, never used */
  training?: Record<string, unknown>;
}

export interface Manifest {
  schemaVersion: 1;
  name: string;
  version: string;
  description?: string;
  input: InputSpec;
  labels: string[];
  files: { classifier: FileRef; s2snet?: FileRef; autoencoder?: FileRef; defended?: FileRef; [key: string]: FileRef | undefined };
  defence: { chain: DefenceStage[] };
  noise: { kind: NoiseKind; sigma: number; maxSigma: number };
  detection: { threshold: number; falsePositiveRate?: number; calibration?: string };
  smoothing?: SmoothingSpec;
  metrics?: Record<string, unknown>;
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(manifestSchema);

function describe(errors: ErrorObject[]): string {
  return errors
    .filter((e) => e.keyword !== 'oneOf' || errors.length === 1)
    .slice(0, 8)
    .map((e) => `${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? ` ('${(e.params as { additionalProperty: string }).additionalProperty}')` : ''}`)
    .join('; ');
}

/** Validates parsed JSON as a manifest; throws a UserError naming the source and every problem found. */
export function parseManifest(json: unknown, source: string): Manifest {
  if (!validate(json)) throw new UserError(`${source}: not a valid model-set manifest: ${describe(validate.errors ?? [])}`);
  const m = json as unknown as Manifest;
  const problems: string[] = [];
  for (const key of ['mean', 'std'] as const) {
    const n = m.input[key].length;
    if (n !== 1 && n !== m.input.channels) problems.push(`input.${key} has ${n} values; give 1 or one per channel (${m.input.channels})`);
  }
  if (m.noise.sigma > m.noise.maxSigma) problems.push(`noise.sigma (${m.noise.sigma}) exceeds noise.maxSigma (${m.noise.maxSigma})`);
  for (const s of m.defence.chain) {
    if ((s.stage === 's2snet' || s.stage === 'autoencoder') && !m.files[s.stage]) problems.push(`defence stage '${s.stage}' needs files.${s.stage}`);
  }
  if (m.smoothing && !m.files[m.smoothing.denoiser]) problems.push(`smoothing.denoiser '${m.smoothing.denoiser}' names no entry of files`);
  if (new Set(m.labels).size !== m.labels.length) problems.push('labels contain duplicates');
  if (problems.length) throw new UserError(`${source}: ${problems.join('; ')}`);
  return m;
}

/** Per-channel values, expanding the one-value form. */
export function perChannel(values: number[], channels: number): number[] {
  return values.length === 1 ? new Array(channels).fill(values[0]) : [...values];
}
