import type { FastifyInstance } from 'fastify';
import { OpenApiDoc, route } from '../openapi';

/** Probes: liveness is "the process answers"; readiness is "send me traffic" (false while starting and draining). */
export async function healthRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc }): Promise<void> {
  const probe = { public: true, rateLimit: false } as const;
  app.route({
    ...route(opts.doc, 'serverLive'),
    config: probe,
    logLevel: 'warn',
    handler: async () => ({ live: true }),
  });
  app.route({
    ...route(opts.doc, 'serverReady'),
    config: probe,
    logLevel: 'warn',
    handler: async (_req, reply) => {
      const ready = app.lifecycle.ready;
      return reply.code(ready ? 200 : 503).send({ ready });
    },
  });
}
