import type { Span } from '@opentelemetry/api';

/**
 * What one request has done so far: the request-log plugin opens it when the
 * request arrives (`req.s2sRecord`), the routes hand it to the shared
 * pipeline, and it is written out as the request's one log line when the
 * response is sent. Passed by hand, not found through AsyncLocalStorage:
 * once one is entered, Node runs a hook on every promise of the process
 * (fastify's, the batcher's, the routes'). Measured in the service's process
 * after one request: 514 ns per awaited promise with it, 95 ns without.
 */
export interface RequestRecord {
  model?: string;
  version?: string;
  images?: number;
  flagged?: number;
  maxScore?: number;
  /** server span of the request when tracing is on */
  span?: Span;
  /** performance.now() when the pipeline handed back its results (start of the "response" span) */
  resultsAt?: number;
}
