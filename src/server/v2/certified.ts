import type { FastifyInstance } from 'fastify';
import type { CertifyingModel } from '../../certify/certifying-model';
import { resolveCertifySettings } from '../../certify/policy';
import { ABSTAIN } from '../../certify/smoothing';
import type { ServedModel } from '../../serving/served-model';
import { UserError } from '../../util/errors';
import type { Config } from '../config';
import { certificationTerms, certifyImages } from '../routes/certify';
import { pixelsFromBytes, pixelsFromJson } from './datatypes';
import { TensorInput, TensorOutput, checkInput, numberParam, Params } from './infer';

/**
 * The V2 (Open Inference Protocol) face of certification: every served set
 * `<set>` is also the model `<set>-certified`, whose outputs are the
 * smoothed classifier's class (−1 = abstain) and certified L2 radius per
 * image, and on request the lower bound on p_A. Request parameters `n`,
 * `alpha`, `sigma` as for /v1/certify; the response parameters state the
 * terms. The V2 routes hand a name to `certifiedModel` first and, when it is
 * one of these, answer with `certifiedInfer`.
 */

export const CERTIFIED_SUFFIX = '-certified';
const CERTIFIED_OUTPUTS = ['class', 'radius', 'p_a_lower'] as const;

export interface CertifiedTarget {
  served: ServedModel;
  model: CertifyingModel;
  name: string;
}

/** The certified model a V2 name refers to, or undefined when it is not `<served set>-certified`. */
export function certifiedModel(app: FastifyInstance, name: string, version?: string): CertifiedTarget | undefined {
  if (!name.endsWith(CERTIFIED_SUFFIX) || !app.hasDecorator('certification')) return undefined;
  const base = name.slice(0, -CERTIFIED_SUFFIX.length);
  const model = app.certification.models.get(base);
  if (!model || !app.models.has(base)) return undefined;
  const served = app.models.get(base);
  if (version !== undefined && version !== served.version) throw new UserError(`model '${name}' has no version '${version}' (serving ${served.version})`, 404);
  return { served, model, name };
}

export function certifiedMetadata(t: CertifiedTarget) {
  const { channels, height, width } = t.served.geometry;
  return {
    name: t.name,
    versions: [t.served.version],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, channels, height, width] }],
    outputs: [
      { name: 'class', datatype: 'INT64', shape: [-1] },
      { name: 'radius', datatype: 'FP32', shape: [-1] },
      { name: 'p_a_lower', datatype: 'FP32', shape: [-1] },
    ],
  };
}

export interface CertifiedCall {
  parameters?: Params;
  inputs: TensorInput[];
  outputs?: string[];
  budgetMs: number;
}

export interface CertifiedResult {
  outputs: TensorOutput[];
  parameters: Record<string, string | number>;
}

export async function certifiedInfer(app: FastifyInstance, t: CertifiedTarget, call: CertifiedCall, config: Config): Promise<CertifiedResult> {
  const wanted = call.outputs && call.outputs.length > 0 ? call.outputs : ['class', 'radius'];
  const seen = new Set<string>();
  for (const w of wanted) {
    if (!(CERTIFIED_OUTPUTS as readonly string[]).includes(w)) throw new UserError(`model '${t.name}' has no output '${w}' (outputs: ${CERTIFIED_OUTPUTS.join(', ')})`);
    if (seen.has(w)) throw new UserError(`output '${w}' is requested twice`);
    seen.add(w);
  }
  const { input, datatype, count } = checkInput(t.served, call.inputs, { maxParts: config.maxParts });
  const settings = resolveCertifySettings(t.model.policy, {
    n: numberParam(call.parameters, 'n'),
    alpha: numberParam(call.parameters, 'alpha'),
    sigma: numberParam(call.parameters, 'sigma'),
  });
  const size = t.served.imageSize;
  const all = input.raw !== undefined ? pixelsFromBytes(input.name, datatype, input.raw, count * size) : pixelsFromJson(input.name, datatype, input.data, count * size, 4);
  const pixels = Array.from({ length: count }, (_, i) => all.subarray(i * size, (i + 1) * size));
  const c = app.certification;
  const certs = await certifyImages(app, c.metrics, t.model, pixels, settings, call.budgetMs, c.noiseFor);
  const tensors: Record<string, TensorOutput> = {
    class: { name: 'class', datatype: 'INT64', shape: [count], values: BigInt64Array.from(certs, (x) => BigInt(x.prediction === ABSTAIN ? -1 : x.prediction)) },
    radius: { name: 'radius', datatype: 'FP32', shape: [count], values: Float32Array.from(certs, (x) => x.radius) },
    p_a_lower: { name: 'p_a_lower', datatype: 'FP32', shape: [count], values: Float32Array.from(certs, (x) => x.pALower) },
  };
  const terms = certificationTerms(t.model, settings, c.seeded);
  return {
    outputs: wanted.map((w) => tensors[w]),
    parameters: { base: terms.base, ...(terms.denoiserSigma !== undefined ? { denoiser_sigma: terms.denoiserSigma } : {}), norm: terms.norm, sigma: terms.sigma, n: terms.n, n0: terms.n0, alpha: terms.alpha, noise: terms.noise },
  };
}
