import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly metrics: Metrics) {}

  get ready(): boolean {
    return this.state === 'ready';
  }
  get draining(): boolean {
    return this.state === 'draining';
  }

  /** Called on every change of state (the health listener's thread keeps its own copy of readiness). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  markReady(): void {
    if (this.state !== 'starting') return;
    this.state = 'ready';
    this.metrics.ready.set(1);
    for (const l of this.listeners) l();
  }

  startDraining(): void {
    this.state = 'draining';
    this.metrics.ready.set(0);
    for (const l of this.listeners) l();
  }
}

export const lifecyclePlugin = fp(async (app: FastifyInstance, opts: { lifecycle: Lifecycle }) => {
  app.addHook('onSend', async (_req, reply, payload) => {
    if (opts.lifecycle.draining) reply.header('connection', 'close');
    return payload;
  });
});

/** How long a connection accepted just before the listener closed has to send its first request. */
export const FIRST_REQUEST_GRACE_MS = 1000;

/**
 * Which connections close at shutdown. Keep-alive connections that have been
 * answered and sit idle close at once (while draining every response already
 * said `Connection: close`, so only connections silent since before the drain
 * are left). A connection accepted but still silent gets
 * FIRST_REQUEST_GRACE_MS to send its first request, which is answered like
 * any request while draining; Node alone would wait for it until its headers
 * timeout (a minute), holding the exit.
 */
export function trackConnections(server: Server): { closeIdle(): void } {
  const state = new Map<Socket, { active: number; served: number }>();
  server.on('connection', (socket: Socket) => {
    state.set(socket, { active: 0, served: 0 });
    socket.once('close', () => state.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const s = state.get(req.socket);
    if (!s) return;
    s.active++;
    res.once('close', () => {
      s.active--;
      s.served++;
    });
  });
  let closing = false;
  return {
    closeIdle() {
      if (closing) return;
      closing = true;
      for (const [socket, s] of state) {
        if (s.active > 0) continue; // finishes, then closes (the response says Connection: close)
        if (s.served > 0) socket.destroy();
        else setTimeout(() => state.get(socket)?.active === 0 && socket.destroy(), FIRST_REQUEST_GRACE_MS).unref();
      }
    },
  };
}
