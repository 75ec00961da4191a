import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FastifyInstance, FastifyReply, FastifyRequest, LogController } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Registry } from 'prom-client';
import type { Detection } from '../serving/detection';
import type { RequestRecord } from './request-context';
import { endRequestSpan, extractContext, incomingTraceId, recordStage, startRequestSpan } from './tracing';

/**
 * The request log: one JSON line per request when it completes, with what an
 * SRE needs to act on it — request id, client address (X-Forwarded-For only
 * from the configured trusted proxies), API-key id (never the key), route,
 * model and version, images, how many were flagged and the highest detection
 * score, status, duration and the trace id. Also the per-request trace span
 * and the flagged-requests-by-key counter. docs/runbook.md has the queries.
 */

declare module 'fastify' {
  interface FastifyRequest {
    s2sRecord?: RequestRecord;
    s2sTraceId?: string;
  }
}

/** Stable id of an API key for logs and metrics: `key-` + 8 hex digits of its SHA-256. Never the key. */
export function apiKeyId(key: string): string {
  return `key-${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 8)}`;
}

/** Label of requests made with no API key (auth off). */
export const NO_KEY = 'none';

/** Called where detections are counted: notes them on the request's record (none outside a request). */
export function noteVerdicts(r: RequestRecord | undefined, model: { name: string; version: string }, detections: readonly Detection[]): void {
  if (!r) return;
  r.model = model.name;
  r.version = model.version;
  r.images = (r.images ?? 0) + detections.length;
  r.flagged = (r.flagged ?? 0) + detections.filter((d) => d.verdict === 'adversarial').length;
  const scores = detections.map((d) => d.score).filter((s) => Number.isFinite(s));
  if (scores.length) r.maxScore = Math.max(r.maxScore ?? -Infinity, ...scores);
}

/** Called by the shared pipeline: its decode, queue and inference stages as spans of the request (none outside a request). */
export function tracePipeline(r: RequestRecord | undefined, t0: number, decodedAt: number, queueMs: number, inferenceMs: number, model: string, images: number): void {
  if (!r) return;
  const end = decodedAt + queueMs + inferenceMs;
  r.resultsAt = end;
  if (!r.span) return;
  recordStage(r.span, 'decode', t0, decodedAt, { 's2s.model': model, 's2s.images': images });
  recordStage(r.span, 'queue', decodedAt, decodedAt + queueMs, { 's2s.model': model });
  recordStage(r.span, 'inference', decodedAt + queueMs, end, { 's2s.model': model, 's2s.images': images });
}

/** The fields of the completion line (exported for tests). */
export function completionLine(req: FastifyRequest, reply: FastifyReply, keyIds: readonly string[]): Record<string, unknown> {
  const r = req.s2sRecord ?? {};
  return {
    method: req.method,
    url: req.url,
    route: req.routeOptions.url ?? 'unmatched',
    remoteAddress: req.ip,
    apiKeyId: req.apiKeyId === undefined ? undefined : keyIds[req.apiKeyId],
    ...(r.model ? { model: r.model, version: r.version } : {}),
    ...(r.images !== undefined ? { images: r.images, flagged: r.flagged ?? 0 } : {}),
    ...(r.maxScore !== undefined ? { maxScore: Number(r.maxScore.toPrecision(6)) } : {}),
    status: reply.statusCode,
    ms: Math.round(reply.elapsedTime * 100) / 100,
    ...(req.s2sTraceId ? { traceId: req.s2sTraceId } : {}),
  };
}

/** Fastify's request logging, replaced: the arrival line is debug, the completion line is the one above. */
export class RequestLog extends LogController {
  keyIds: readonly string[] = [];
  override incomingRequest(req: FastifyRequest): void {
    req.log.debug({ method: req.method, url: req.url }, 'incoming request');
  }
  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const line = completionLine(req, reply, this.keyIds);
    if (error) req.log.error({ ...line, err: error }, 'request errored');
    // Under a flood, overload refusals (503 + Retry-After) are most requests: s2s_rejections_total counts them; a line each would cost more than refusing.
    else if (reply.statusCode === 503 && reply.getHeader('retry-after') !== undefined) req.log.debug(line, 'request completed');
    else req.log.info(line, 'request completed');
  }
}

export interface RequestLogOptions {
  /** the configured API keys, in the order auth numbers them */
  apiKeys: readonly string[];
  registry: Registry;
  controller: RequestLog;
}

/**
 * Opens each request's record (and its span when tracing is on), re-enters it
 * before the handler (body parsing runs on stream callbacks, outside it), and
 * on the response counts flagged requests per API key and ends the span.
 */
export const requestLogPlugin = fp(async (app: FastifyInstance, opts: RequestLogOptions) => {
  const keyIds = opts.apiKeys.map(apiKeyId);
  opts.controller.keyIds = keyIds;
  // Bounded label set: the configured keys' ids, or `none` when auth is off.
  const flagged = new Counter({
    name: 's2s_flagged_requests_total',
    help: 'Requests with at least one image flagged as adversarial, by API-key id (`none` when auth is off).',
    labelNames: ['api_key_id'] as const,
    registers: [opts.registry],
  });
  for (const id of keyIds.length ? keyIds : [NO_KEY]) flagged.inc({ api_key_id: id }, 0);

  app.addHook('onRequest', (req, _reply, done) => {
    const parent = extractContext(req.headers);
    req.s2sTraceId = incomingTraceId(parent);
    const record: RequestRecord = {};
    record.span = startRequestSpan(`${req.method} ${req.routeOptions.url ?? 'unmatched'}`, parent, {
      'http.request.method': req.method,
      'http.route': req.routeOptions.url ?? 'unmatched',
      'url.path': req.url.split('?')[0],
      's2s.request_id': req.id,
    });
    if (record.span) req.s2sTraceId = record.span.spanContext().traceId;
    req.s2sRecord = record;
    done();
  });
  app.addHook('onResponse', async (req, reply) => {
    const r = req.s2sRecord;
    if (!r) return;
    if ((r.flagged ?? 0) > 0) flagged.inc({ api_key_id: req.apiKeyId === undefined ? NO_KEY : keyIds[req.apiKeyId] ?? NO_KEY });
    if (r.span) {
      if (r.resultsAt !== undefined) recordStage(r.span, 'response', r.resultsAt, performance.now());
      endRequestSpan(r.span, reply.statusCode, {
        ...(r.model ? { 's2s.model': r.model, 's2s.model_version': r.version ?? '' } : {}),
        ...(r.images !== undefined ? { 's2s.images': r.images, 's2s.flagged': r.flagged ?? 0 } : {}),
      });
    }
  });
});
