import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { isUserError } from '../util/errors';
import { OverloadError } from '../serving/batcher';
import type { Metrics } from './metrics';

/**
 * One JSON error shape for every failure, `{error, code, requestId}`: what
 * was wrong for a person, a stable code for a program. Client mistakes are
 * 4xx with the reason; anything unexpected is a 500 that says nothing about
 * internals (the log has the stack, under the same request id).
 */

const CODES: Record<number, string> = {
  400: 'bad_input',
  401: 'unauthorized',
  403: 'unauthorized',
  404: 'not_found',
  405: 'bad_input',
  406: 'unsupported_media_type',
  411: 'bad_input',
  413: 'too_large',
  415: 'unsupported_media_type',
  422: 'detected',
  429: 'rate_limited',
  431: 'too_large',
  503: 'overloaded',
};

interface Classified {
  status: number;
  code: string;
  message: string;
  retryAfter?: number;
}

export function classifyError(err: unknown): Classified {
  if (err instanceof OverloadError) return { status: 503, code: err.reason, message: err.message, retryAfter: err.retryAfterSeconds };
  if (isUserError(err)) return { status: err.statusCode, code: CODES[err.statusCode] ?? 'bad_input', message: err.message };
  const e = err as FastifyError & { validationContext?: string };
  if (e && Array.isArray(e.validation)) return { status: 400, code: 'bad_input', message: e.message };
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    // Fastify's and the multipart parser's own client errors: their messages describe the request only.
    const message = e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? `${e.message}; send image/jpeg, image/png, image/webp, image/gif, image/tiff, multipart/form-data or application/json` : e.message;
    return { status, code: CODES[status] ?? 'bad_input', message };
  }
  if (status === 503) return { status, code: 'overloaded', message: e.message || 'service overloaded', retryAfter: 1 };
  return { status: 500, code: 'internal', message: 'internal error; the log has details under this request id' };
}

export function sendError(req: FastifyRequest, reply: FastifyReply, c: Classified, extra: Record<string, unknown> = {}): FastifyReply {
  if (c.retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('retry-after', String(c.retryAfter));
  return reply.code(c.status).type('application/json; charset=utf-8').send({ error: c.message, code: c.code, requestId: req.id, ...extra });
}

export const errorsPlugin = fp(async (app: FastifyInstance, opts: { metrics: Metrics }) => {
  app.setErrorHandler((err, req, reply) => {
    const c = classifyError(err);
    if (c.status >= 500 && c.code === 'internal') req.log.error({ err }, 'request failed');
    else req.log.info({ status: c.status, code: c.code, reason: c.message }, 'request refused');
    // Reasons counted where they happen (auth, rate limit, queue, shedding) are not counted twice.
    if (c.status >= 400 && c.status < 500 && ![401, 403, 422, 429].includes(c.status)) opts.metrics.reject('bad_input');
    return sendError(req, reply, c);
  });
  app.setNotFoundHandler((req, reply) => {
    sendError(req, reply, { status: 404, code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
});
