import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { OverloadError } from '../serving/batcher';
import type { Metrics } from './metrics';

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
