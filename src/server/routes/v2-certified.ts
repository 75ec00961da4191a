import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CertifyingModel } from '../../certify/certifying-model';
import { resolveCertifySettings } from '../../certify/policy';
import { ABSTAIN } from '../../certify/smoothing';
import type { ServedModel } from '../../serving/served-model';
import { UserError } from '../../util/errors';
import type { Config } from '../config';
import { budgetLeft } from '../pipeline';
import { certificationTerms, certifyImages } from './certify';
import { readTensor } from './v2';

/**
 * The V2 (Open Inference Protocol) face of certification: every served set
 * `<set>` is also the model `<set>-certified`, whose outputs are the
 * smoothed classifier's class (−1 = abstain) and certified L2 radius per
 * image. Request parameters `n`, `alpha`, `sigma` as for /v1/certify; the
 * response parameters state the terms. The V2 routes hand a name to
 * `certifiedModel` first and, when it is one of these, answer with the
 * functions below.
 */

export const CERTIFIED_SUFFIX = '-certified';

export interface CertifiedTarget {
  served: ServedModel;
  model: CertifyingModel;
  name: string;
}

/** The certified model a V2 name refers to, or undefined when it is not `<served set>-certified`. */
export function certifiedModel(app: FastifyInstance, name: string): CertifiedTarget | undefined {
  if (!name.endsWith(CERTIFIED_SUFFIX) || !app.hasDecorator('certification')) return undefined;
  const base = name.slice(0, -CERTIFIED_SUFFIX.length);
  const model = app.certification.models.get(base);
  if (!model || !app.models.has(base)) return undefined;
  return { served: app.models.get(base), model, name };
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

type Scalar = string | number | boolean;

function numberParam(p: Record<string, Scalar> | undefined, key: string): number | undefined {
  const v = p?.[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new UserError(`parameter '${key}' must be a number`);
  return n;
}

export async function certifiedInfer(app: FastifyInstance, t: CertifiedTarget, req: FastifyRequest, reply: FastifyReply, config: Config) {
  const body = req.body as { id?: string; parameters?: Record<string, Scalar>; inputs: Array<{ name: string; shape: number[]; datatype: string; data: unknown[] }>; outputs?: Array<{ name: string }> };
  const input = body.inputs[0];
  const { channels, height, width } = t.served.geometry;
  if (body.inputs.length !== 1 || input.name !== 'input') throw new UserError(`model '${t.name}' takes one input named 'input'`);
  if (input.datatype !== 'FP32' && input.datatype !== 'UINT8') throw new UserError(`input datatype ${input.datatype} is not supported; send FP32 (values in [0,1]) or UINT8 (0–255)`);
  const s = input.shape;
  if (s.length !== 4 || s[1] !== channels || s[2] !== height || s[3] !== width || s[0] < 1) {
    throw new UserError(`input shape [${s.join(', ')}] does not fit the model; expected [N, ${channels}, ${height}, ${width}] with N ≥ 1`);
  }
  if (s[0] > config.maxParts) throw new UserError(`batch of ${s[0]}; at most ${config.maxParts} images per request`, 413);
  const wanted = body.outputs?.map((o) => o.name) ?? ['class', 'radius'];
  for (const w of wanted) if (!['class', 'radius', 'p_a_lower'].includes(w)) throw new UserError(`model '${t.name}' has no output '${w}' (outputs: class, radius, p_a_lower)`);
  const settings = resolveCertifySettings(t.model.policy, { n: numberParam(body.parameters, 'n'), alpha: numberParam(body.parameters, 'alpha'), sigma: numberParam(body.parameters, 'sigma') });
  const size = channels * height * width;
  const all = readTensor(input as Parameters<typeof readTensor>[0], s[0] * size);
  const pixels = Array.from({ length: s[0] }, (_, i) => all.subarray(i * size, (i + 1) * size));
  const c = app.certification;
  const certs = await certifyImages(app, c.metrics, t.model, pixels, settings, budgetLeft(reply, config.requestTimeoutMs), c.noiseFor);
  const n = certs.length;
  const tensors: Record<string, object> = {
    class: { name: 'class', datatype: 'INT64', shape: [n], data: certs.map((x) => (x.prediction === ABSTAIN ? -1 : x.prediction)) },
    radius: { name: 'radius', datatype: 'FP32', shape: [n], data: certs.map((x) => x.radius) },
    p_a_lower: { name: 'p_a_lower', datatype: 'FP32', shape: [n], data: certs.map((x) => x.pALower) },
  };
  const terms = certificationTerms(t.model, settings, c.seeded);
  return {
    model_name: t.name,
    model_version: t.served.version,
    ...(body.id !== undefined ? { id: body.id } : {}),
    parameters: { base: terms.base, norm: terms.norm, sigma: terms.sigma, n: terms.n, n0: terms.n0, alpha: terms.alpha, noise: terms.noise },
    outputs: [...new Set(wanted)].map((w) => tensors[w]),
  };
}
