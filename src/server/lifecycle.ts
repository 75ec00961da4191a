import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Metrics } from './metrics';

/**
 * Starting → ready → draining. Readiness (GET /v2/health/ready, the s2s_ready
 * gauge) is true only in between. While draining, every response carries
 * `Connection: close`, so keep-alive clients reconnect — to another replica,
 * once the load balancer has seen the readiness change.
 */
export class Lifecycle {
  private state: 'starting' | 'ready' | 'draining' = 'starting';

  constructor(private readonly metrics: Metrics) {}

  get ready(): boolean {
    return this.state === 'ready';
  }
  get draining(): boolean {
    return this.state === 'draining';
  }

  markReady(): void {
    if (this.state !== 'starting') return;
    this.state = 'ready';
    this.metrics.ready.set(1);
  }

  startDraining(): void {
    this.state = 'draining';
    this.metrics.ready.set(0);
  }
}

export const lifecyclePlugin = fp(async (app: FastifyInstance, opts: { lifecycle: Lifecycle }) => {
  app.addHook('onSend', async (_req, reply, payload) => {
    if (opts.lifecycle.draining) reply.header('connection', 'close');
    return payload;
  });
});
