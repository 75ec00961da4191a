import type { FastifyInstance } from 'fastify';
import { UserError } from '../../util/errors';
import { judge } from '../../serving/detection';
import { resolveSigma } from '../../serving/noise';
import type { ServedModel } from '../../serving/served-model';
import type { Config } from '../config';
import { OpenApiDoc, route } from '../openapi';
import { budgetLeft, runPipeline } from '../pipeline';
import { countDetections, rejectFlagged } from './classify';
import { certifiedInfer, certifiedMetadata, certifiedModel } from './v2-certified';

/**
 * Open Inference Protocol (KServe V2), JSON form. The model's one input is
 * the image tensor `input` [N,C,H,W]; what comes back went through the same
 * defended path as /v1/classify.
 */

type Scalar = string | number | boolean;

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
  parameters?: Record<string, Scalar>;
}

interface InferRequest {
  id?: string;
  parameters?: Record<string, Scalar>;
  inputs: InferInput[];
  outputs?: Array<{ name: 'probs' | 'score' | 'reconstruction' }>;
}

const SERVER_NAME = 's2snet-proxy';
const VERSION: string = require('../../../package.json').version;

function metadata(m: ServedModel) {
  const { channels, height, width } = m.geometry;
  return {
    name: m.name,
    versions: [m.version],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, channels, height, width] }],
    outputs: [
      { name: 'probs', datatype: 'FP32', shape: [-1, m.labels.length] },
      { name: 'score', datatype: 'FP32', shape: [-1] },
      { name: 'reconstruction', datatype: 'FP32', shape: [-1, channels, height, width] },
    ],
  };
}

/**
 * Reads the tensor's values into one Float32Array in [0,1], checking count,
 * type and range as it goes (nested arrays are flattened row-major).
 */
export function readTensor(input: InferInput, expected: number): Float32Array {
  const out = new Float32Array(expected);
  const uint8 = input.datatype === 'UINT8';
  let n = 0;
  const visit = (v: unknown, depth: number): void => {
    if (Array.isArray(v)) {
      if (depth > 8) throw new UserError(`input '${input.name}': data is nested deeper than the tensor's rank`);
      for (const x of v) visit(x, depth + 1);
      return;
    }
    if (n >= expected) {
      n++;
      return;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`input '${input.name}': element ${n} is ${JSON.stringify(v)?.slice(0, 20)}, not a finite number`);
    if (uint8) {
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new UserError(`input '${input.name}': UINT8 element ${n} is ${v}, outside 0–255`);
      out[n++] = v / 255;
    } else {
      if (v < 0 || v > 1) throw new UserError(`input '${input.name}': FP32 element ${n} is ${v}, outside [0, 1] (the model's input range)`);
      out[n++] = v;
    }
  };
  visit(input.data, 0);
  if (n !== expected) throw new UserError(`input '${input.name}': shape [${input.shape.join(', ')}] needs ${expected} values, data has ${n}`);
  return out;
}

function numberParam(p: Record<string, Scalar> | undefined, key: string): number | undefined {
  const v = p?.[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new UserError(`parameter '${key}' must be a number`);
  return n;
}

export async function v2Routes(app: FastifyInstance, opts: { doc: OpenApiDoc; config: Config }): Promise<void> {
  const { config } = opts;

  app.route({
    ...route(opts.doc, 'serverMetadata'),
    handler: async () => ({ name: SERVER_NAME, version: VERSION, extensions: [] }),
  });

  app.route({
    ...route(opts.doc, 'modelMetadata'),
    handler: async (req) => {
      const certified = certifiedModel(app, (req.params as { name: string }).name);
      return certified ? certifiedMetadata(certified) : metadata(app.models.get((req.params as { name: string }).name));
    },
  });

  app.route({
    ...route(opts.doc, 'modelReady'),
    handler: async (req, reply) => {
      const name = (req.params as { name: string }).name;
      const m = certifiedModel(app, name) ?? app.models.get(name);
      const ready = app.lifecycle.ready;
      return reply.code(ready ? 200 : 503).send({ name: m.name, ready });
    },
  });

  app.route({
    ...route(opts.doc, 'modelInfer'),
    handler: async (req, reply) => {
      const certified = certifiedModel(app, (req.params as { name: string }).name);
      if (certified) return certifiedInfer(app, certified, req, reply, config);
      const model = app.models.get((req.params as { name: string }).name);
      const body = req.body as InferRequest;
      const input = body.inputs[0];
      const { channels, height, width } = model.geometry;
      if (input.name !== 'input') throw new UserError(`unknown input '${input.name}'; the model's input is 'input'`);
      if (input.datatype !== 'FP32' && input.datatype !== 'UINT8') throw new UserError(`input datatype ${input.datatype} is not supported; send FP32 (values in [0,1]) or UINT8 (0–255)`);
      const s = input.shape;
      if (s.length !== 4 || s[1] !== channels || s[2] !== height || s[3] !== width || s[0] < 1) {
        throw new UserError(`input shape [${s.join(', ')}] does not fit the model; expected [N, ${channels}, ${height}, ${width}] with N ≥ 1`);
      }
      if (s[0] > config.maxParts) throw new UserError(`batch of ${s[0]}; at most ${config.maxParts} images per request`, 413);
      const size = channels * height * width;
      const pixels = readTensor(input, s[0] * size);
      const sigma = resolveSigma(model.noise, numberParam(body.parameters, 'noise'));
      const wanted = body.outputs?.map((o) => o.name) ?? ['probs', 'score'];
      for (const w of wanted as string[]) if (!['probs', 'score', 'reconstruction'].includes(w)) throw new UserError(`model '${model.name}' has no output '${w}' (outputs: probs, score, reconstruction; class and radius belong to '${model.name}-certified')`);
      const { results } = await runPipeline(
        {
          model,
          count: s[0],
          prepare: async (i) => pixels.subarray(i * size, (i + 1) * size),
          sigma,
          reconstruction: wanted.includes('reconstruction'),
          budgetMs: budgetLeft(reply, config.requestTimeoutMs),
        },
        app.metrics,
      );
      const detections = results.map((r) => judge(r.output.score, model.threshold));
      countDetections(app, model, detections);
      const rejected = rejectFlagged(app, req, reply, detections, config);
      if (rejected) return rejected;
      const n = results.length;
      const k = model.labels.length;
      const tensors = {
        probs: { name: 'probs', datatype: 'FP32', shape: [n, k], data: results.flatMap((r) => Array.from(r.output.probs)) },
        score: { name: 'score', datatype: 'FP32', shape: [n], data: results.map((r) => r.output.score) },
        reconstruction: {
          name: 'reconstruction',
          datatype: 'FP32',
          shape: [n, channels, height, width],
          data: wanted.includes('reconstruction') ? results.flatMap((r) => Array.from(r.output.reconstruction!)) : [],
        },
      };
      return {
        model_name: model.name,
        model_version: model.version,
        ...(body.id !== undefined ? { id: body.id } : {}),
        parameters: {
          noise_sigma: sigma,
          detection_threshold: model.threshold,
          detection_verdicts: detections.map((d) => d.verdict).join(','),
        },
        outputs: [...new Set(wanted)].map((w) => tensors[w]),
      };
    },
  });
}
