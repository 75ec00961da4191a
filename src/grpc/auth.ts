import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { matchKey } from '../server/auth';
import { UserError } from '../util/errors';

/**
 * The HTTP API keys, presented in call metadata the same two ways:
 * `authorization: Bearer <key>` or `x-api-key: <key>`. Compared as on HTTP
 * (SHA-256 digests, timingSafeEqual against every key).
 */
/** Returns the client's identity for rate limits (`key:<index>`), or undefined with auth off. */
export function grpcAuthenticator(keys: string[]): (metadata: grpc.Metadata) => string | undefined {
  const digests = keys.map((k) => createHash('sha256').update(k, 'utf8').digest());
  return (metadata) => {
    if (digests.length === 0) return undefined;
    const first = (name: string) => {
      const v = metadata.get(name)[0];
      return typeof v === 'string' ? v : undefined;
    };
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(first('authorization') ?? '');
    const presented = bearer?.[1] ?? first('x-api-key')?.trim();
    if (!presented) throw new UserError('API key required: send metadata authorization: Bearer <key> or x-api-key', 401);
    const id = matchKey(digests, presented);
    if (id < 0) throw new UserError('invalid API key', 401);
    return `key:${id}`;
  };
}
