import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { OverloadError } from '../serving/batcher';
import { sendError } from './errors';
import type { Metrics } from './metrics';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: the door's queue check leaves this POST route alone (it queues no images) */
    admission?: boolean;
  }
}

/**
 * Admission at the door, before a body is read: a request on a connection
 * beyond the connection cap, or one that would queue images for a model
 * whose queue is already full (or whose expected wait is over its budget),
 * gets 503 + Retry-After at once. Inference runs
 * on worker threads, so this answer never waits behind a batch; accepted
 * requests wait at most about queue limit / capacity. Probes and /metrics
 * are always answered.
 */
const OVER_CAP_IDLE_MS = 10_000;

export const admissionPlugin = fp(async (app: FastifyInstance, opts: { maxConnections: number; metrics: Metrics }) => {
  let open = 0;
  const overCap = new WeakSet<Socket>();
  app.server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => open--);
    if (open > opts.maxConnections) {
      overCap.add(socket);
      // an over-cap connection that sends nothing does not get to hold its descriptor for long
      socket.setTimeout(OVER_CAP_IDLE_MS, () => socket.destroy());
    }
  });
  // Only far past the cap does Node close new connections outright (a reset): file descriptors are finite too.
  app.server.maxConnections = opts.maxConnections * 4;

  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config;
    if (config?.public) return;
    // Refusals are answered here, not thrown: under a flood they are most of the traffic, and an
    // error's stack trace and the error handler's extra log line would be most of their cost.
    if (overCap.has(req.raw.socket)) {
      opts.metrics.reject('overloaded');
      reply.header('connection', 'close');
      return sendError(req, reply, { status: 503, code: 'overloaded', message: `too many open connections (the cap is ${opts.maxConnections}); retry shortly`, retryAfter: 1 });
    }
    if (req.method !== 'POST' || config?.admission === false) return;
    const name = (req.params as { name?: string } | undefined)?.name ?? (req.query as { model?: string } | undefined)?.model;
    let model;
    try {
      model = app.models.get(typeof name === 'string' ? name : undefined);
    } catch {
      return; // an unknown model is the route's 404 to give
    }
    const refused = model.batcher.refusal(1);
    if (refused !== undefined) {
      opts.metrics.reject('queue_full');
      return sendError(req, reply, { status: 503, code: 'queue_full', message: refused, retryAfter: 1 });
    }
  });
});

/**
 * Load shedding and rate limiting, both answering before any body is read.
 * Shedding watches event-loop delay: when the loop lags, new work would only
 * queue behind it, so refusing early (503, Retry-After) keeps the latency of
 * admitted requests bounded. Probes and metrics are exempt: a busy replica is
 * alive, and the scrape is how anyone sees that it is busy.
 */
export const loadSheddingPlugin = fp(async (app: FastifyInstance, opts: { maxEventLoopDelayMs: number; metrics: Metrics }) => {
  if (opts.maxEventLoopDelayMs <= 0) return;
  await app.register(underPressure, {
    maxEventLoopDelay: opts.maxEventLoopDelayMs,
    retryAfter: 1,
    pressureHandler: async (req, _reply, type, value) => {
      if (req.routeOptions.config?.public) return;
      opts.metrics.reject('overloaded');
      req.log.warn({ type, value }, 'shedding load');
      throw new OverloadError(`overloaded (${type} ${Math.round(Number(value ?? 0))}); retry shortly`, 'overloaded', 1);
    },
  });
});

/** Per-client request rate: by API key when auth is on, else by client address. */
export const rateLimitPlugin = fp(async (app: FastifyInstance, opts: { max: number; windowMs: number; metrics: Metrics } | { max?: undefined; metrics: Metrics }) => {
  if (opts.max === undefined) return;
  await app.register(rateLimit, {
    global: true,
    max: opts.max,
    timeWindow: opts.windowMs,
    keyGenerator: (req) => (req.apiKeyId !== undefined ? `key:${req.apiKeyId}` : `ip:${req.ip}`),
    onExceeded: () => opts.metrics.reject('rate_limited'),
  });
});
