import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UserError } from '../../util/errors';
import { Detection, judge } from '../../serving/detection';
import { decodeImage, encodePng } from '../../serving/image';
import { resolveSigma } from '../../serving/noise';
import type { ServedModel } from '../../serving/served-model';
import type { Config } from '../config';
import { sendError } from '../errors';
import { imagesFromRequest } from '../inputs';
import { OpenApiDoc, route } from '../openapi';
import { budgetLeft, runPipeline } from '../pipeline';
import { noteVerdicts } from '../../telemetry/request-log';

interface ClassifyQuery {
  topK?: number;
  model?: string;
  noise?: number;
}

export interface LabelScore {
  label: string;
  index: number;
  probability: number;
}

/** The k most probable labels, most probable first. */
export function topK(probs: Float32Array, k: number, labels: readonly string[]): LabelScore[] {
  const idx = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  return idx.slice(0, k).map((i) => ({ label: labels[i], index: i, probability: probs[i] }));
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/** The flagged images as a 422 (detection policy `reject`), or undefined when none is flagged. */
export function rejectFlagged(app: FastifyInstance, req: FastifyRequest, reply: FastifyReply, detections: Detection[], config: Config): FastifyReply | undefined {
  if (config.detectionPolicy !== 'reject') return undefined;
  const flagged = detections.flatMap((d, index) => (d.verdict === 'adversarial' ? [{ index, score: d.score, threshold: d.threshold }] : []));
  if (flagged.length === 0) return undefined;
  app.metrics.reject('detected');
  req.log.info({ flagged: flagged.length }, 'rejected: adversarial input detected');
  return sendError(
    req,
    reply,
    { status: 422, code: 'detected', message: `${flagged.length} of ${detections.length} image${detections.length > 1 ? 's' : ''} flagged as adversarial (detection score above the model's threshold)` },
    { detections: flagged },
  );
}

export function countDetections(app: FastifyInstance, req: FastifyRequest, model: ServedModel, detections: Detection[]): void {
  app.metrics.images.inc({ model: model.name }, detections.length);
  for (const d of detections) app.metrics.detections.inc({ model: model.name, verdict: d.verdict });
  noteVerdicts(req.s2sRecord, model, detections);
}

/** POST /v1/classify, POST /v1/reconstruct, GET /v1/models */
export async function classifyRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc; config: Config }): Promise<void> {
  const { config } = opts;
  const limits = { bodyLimit: config.bodyLimit, maxParts: config.maxParts };
  const decodeLimits = { maxPixels: config.maxPixels, maxPixelsGifTiff: config.maxPixelsGifTiff, timeoutS: config.decodeTimeoutS };

  app.route({
    ...route(opts.doc, 'classify'),
    handler: async (req, reply) => {
      const q = req.query as ClassifyQuery;
      const json = !Buffer.isBuffer(req.body) && req.body && typeof req.body === 'object' && !req.isMultipart() ? (req.body as ClassifyQuery) : undefined;
      const model = app.models.get(json?.model ?? q.model);
      const k = Math.min(json?.topK ?? q.topK ?? 5, model.labels.length);
      const sigma = resolveSigma(model.noise, json?.noise ?? q.noise);
      const sources = await imagesFromRequest(req, limits);
      const { results } = await runPipeline(
        {
          model,
          count: sources.length,
          prepare: (i) => decodeImage(sources[i].bytes, model.geometry, decodeLimits, sources[i].label),
          sigma,
          reconstruction: false,
          budgetMs: budgetLeft(reply, config.requestTimeoutMs),
          record: req.s2sRecord,
        },
        app.metrics,
      );
      const t0 = performance.now();
      const detections = results.map((r) => judge(r.output.score, model.threshold));
      const items = results.map((r, i) => ({
        index: i,
        ...(sources[i].filename ? { filename: sources[i].filename } : {}),
        top: topK(r.output.probs, k, model.labels),
        detection: detections[i],
        noise: { kind: model.noise.kind, sigma },
        timings: { decodeMs: round3(r.decodeMs), queueMs: round3(r.queueMs), inferenceMs: round3(r.inferenceMs), postprocessMs: 0, batchSize: r.batchSize },
      }));
      const postMs = performance.now() - t0;
      for (const it of items) it.timings.postprocessMs = round3(postMs / items.length);
      app.metrics.observeStage('postprocess', model.name, postMs / 1000);
      countDetections(app, req, model, detections);
      const rejected = rejectFlagged(app, req, reply, detections, config);
      if (rejected) return rejected;
      return { model: { name: model.name, version: model.version }, results: items };
    },
  });

  app.route({
    ...route(opts.doc, 'reconstruct'),
    handler: async (req, reply) => {
      const q = req.query as ClassifyQuery;
      if (!Buffer.isBuffer(req.body)) throw new UserError('send one raw image body (image/jpeg, image/png, image/webp, image/gif or image/tiff)', 415);
      const bytes = req.body;
      const model = app.models.get(q.model);
      const sigma = resolveSigma(model.noise, q.noise);
      const { results } = await runPipeline(
        {
          model,
          count: 1,
          prepare: () => decodeImage(bytes, model.geometry, decodeLimits),
          sigma,
          reconstruction: true,
          budgetMs: budgetLeft(reply, config.requestTimeoutMs),
          record: req.s2sRecord,
        },
        app.metrics,
      );
      const t0 = performance.now();
      const png = await encodePng(results[0].output.reconstruction!, model.geometry);
      app.metrics.observeStage('postprocess', model.name, (performance.now() - t0) / 1000);
      return reply
        .type('image/png')
        .header('x-s2s-model', `${model.name}@${model.version}`)
        .header('x-s2s-noise-sigma', String(sigma))
        .send(png);
    },
  });

  app.route({
    ...route(opts.doc, 'listModels'),
    handler: async () => ({
      models: app.models.all().map((m) => ({
        name: m.name,
        version: m.version,
        ...(m.manifest.description ? { description: m.manifest.description } : {}),
        default: m.name === app.models.defaultName,
        input: { channels: m.geometry.channels, height: m.geometry.height, width: m.geometry.width },
        labels: [...m.labels],
        defence: m.manifest.defence.chain.map((s) => s.stage),
        noise: { ...m.noise },
        detection: { threshold: m.threshold, policy: config.detectionPolicy },
        executionProvider: m.provider,
      })),
    }),
  });
}
