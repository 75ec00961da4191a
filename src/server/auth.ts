import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { UserError } from '../util/errors';
import type { Metrics } from './metrics';

/**
 * Optional API-key auth. Keys are compared as SHA-256 digests with
 * timingSafeEqual (equal lengths by construction) against every configured
 * key, without stopping at the first match, so response time says nothing
 * about how much of a guess was right. Probes, metrics and /docs stay open.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** no API key needed (probes, metrics) */
    public?: boolean;
  }
  interface FastifyRequest {
    /** index of the API key that authenticated the request (for per-key rate limits) */
    apiKeyId?: number;
  }
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const h = req.headers['x-api-key'];
  return typeof h === 'string' && h.length > 0 ? h.trim() : undefined;
}

/** Index of the matching key or -1, in time independent of which (if any) matched. */
export function matchKey(keys: Buffer[], presented: string): number {
  const d = digest(presented);
  let found = -1;
  for (let i = 0; i < keys.length; i++) if (timingSafeEqual(keys[i], d) && found < 0) found = i;
  return found;
}

export const authPlugin = fp(async (app: FastifyInstance, opts: { keys: string[]; metrics: Metrics }) => {
  if (opts.keys.length === 0) return;
  const keys = opts.keys.map(digest);
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public || req.url === '/docs' || req.url.startsWith('/docs/')) return;
    const presented = presentedKey(req);
    const id = presented === undefined ? -1 : matchKey(keys, presented);
    if (id < 0) {
      opts.metrics.reject('unauthorized');
      reply.header('www-authenticate', 'Bearer realm="s2s"');
      throw new UserError(presented === undefined ? 'API key required: send Authorization: Bearer <key> or X-API-Key' : 'invalid API key', 401);
    }
    req.apiKeyId = id;
  });
});
