import { AsyncLocalStorage } from 'node:async_hooks';
import type { Span } from '@opentelemetry/api';

/**
 * What one request has done so far, reachable from any code that runs on its
 * behalf (routes, the shared pipeline) without threading it through every
 * call: the request-log plugin opens it when the request arrives and writes
 * it out as the request's one log line when the response is sent.
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

const store = new AsyncLocalStorage<RequestRecord>();

export function runWithRequest<T>(record: RequestRecord, fn: () => T): T {
  return store.run(record, fn);
}

/** The record of the request being served, or undefined outside one (e.g. CLI, tests of the pipeline alone). */
export function currentRequest(): RequestRecord | undefined {
  return store.getStore();
}
