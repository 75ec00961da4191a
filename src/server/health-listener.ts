import Fastify, { FastifyBaseLogger } from 'fastify';
import { UserError } from '../util/errors';
import type { Lifecycle } from './lifecycle';
import { Metrics, metricsRoute } from './metrics';
import type { OpenApiDoc } from './openapi';
import { healthRoutes } from './routes/health';

/**
 * Probes and the scrape on a port of their own (S2S_HEALTH_PORT). On the
 * traffic port a probe's connection waits in the same listen backlog, the
 * same accept loop, the same connection cap and the same HTTP parsing order
 * as a flood's: under overload — exactly when a restart would hurt most —
 * the liveness probe times out although the process is well. Here it meets
 * none of that: a second small server on the same event loop (so "it
 * answers" still means "the event loop turns"), with no admission, auth,
 * rate limit or load shedding, answering the same liveness and readiness
 * (readiness is the same Lifecycle, so it turns 503 on SIGTERM here too).
 */

/**
 * Connections the health listener keeps at most: kubelet opens one per
 * probe and closes it, a scraper keeps one or two; the cap only stops a
 * stray client from spending the process's file descriptors here.
 */
export const HEALTH_MAX_CONNECTIONS = 256;

export interface HealthListener {
  url: string;
  close(): Promise<void>;
}

export async function startHealthListener(opts: {
  host: string;
  port: number;
  lifecycle: Lifecycle;
  metrics: Metrics;
  doc: OpenApiDoc;
  logger: FastifyBaseLogger;
}): Promise<HealthListener> {
  const app = Fastify({
    loggerInstance: opts.logger.child({ listener: 'health' }),
    // Probe connections are short and a scrape is cheap to retry: nothing here is worth holding the exit for.
    forceCloseConnections: true,
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.decorate('lifecycle', opts.lifecycle);
  await app.register(healthRoutes, { doc: opts.doc });
  metricsRoute(app, opts.metrics);
  app.server.maxConnections = HEALTH_MAX_CONNECTIONS;
  try {
    const url = await app.listen({ port: opts.port, host: opts.host });
    return { url, close: () => app.close() };
  } catch (e) {
    await app.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new UserError(`cannot listen for health probes on ${opts.host}:${opts.port} (${code})`);
    throw e;
  }
}
