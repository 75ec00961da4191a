import { UserError } from '../util/errors';

/**
 * S2S_RATE_LIMIT for gRPC calls: the same budget per client (API key, else
 * address) per window as HTTP, counted in fixed windows. Over it: 429, which
 * the status mapping turns into RESOURCE_EXHAUSTED with retry-after metadata.
 * The counts are kept apart from HTTP's, so a client using both gets the
 * budget on each.
 */
export class RateLimitError extends UserError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message, 429);
  }
}

export function grpcRateLimiter(limit: { max: number; windowMs: number } | undefined): (client: string) => void {
  if (!limit) return () => undefined;
  let windowStart = Date.now();
  let counts = new Map<string, number>();
  return (client) => {
    const now = Date.now();
    if (now - windowStart >= limit.windowMs) {
      windowStart = now;
      counts = new Map();
    }
    const n = (counts.get(client) ?? 0) + 1;
    counts.set(client, n);
    if (n > limit.max) {
      const retry = Math.max(1, Math.ceil((windowStart + limit.windowMs - now) / 1000));
      throw new RateLimitError(`rate limit: at most ${limit.max} calls per ${limit.windowMs / 1000} s; retry in ${retry} s`, retry);
    }
  };
}
