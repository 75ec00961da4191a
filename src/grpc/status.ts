import * as grpc from '@grpc/grpc-js';
import { classifyError } from '../server/errors';
import { RateLimitError } from './rate-limit';

/**
 * Service errors as gRPC statuses, following the gRPC ↔ HTTP mapping: the
 * same classification (and the same messages) as the HTTP error handler.
 */

const CODES: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  413: grpc.status.RESOURCE_EXHAUSTED,
  415: grpc.status.INVALID_ARGUMENT,
  422: grpc.status.FAILED_PRECONDITION,
  429: grpc.status.RESOURCE_EXHAUSTED,
  503: grpc.status.UNAVAILABLE,
};

export interface GrpcFailure {
  /** HTTP-equivalent status, for metrics and logs */
  httpStatus: number;
  error: Partial<grpc.StatusObject>;
}

export function toGrpcError(err: unknown): GrpcFailure {
  const c = classifyError(err);
  const metadata = new grpc.Metadata();
  metadata.set('s2s-error-code', c.code);
  const retryAfter = err instanceof RateLimitError ? err.retryAfterSeconds : c.retryAfter;
  if (retryAfter !== undefined) metadata.set('retry-after', String(retryAfter));
  return { httpStatus: c.status, error: { code: CODES[c.status] ?? (c.status >= 500 ? grpc.status.INTERNAL : grpc.status.INVALID_ARGUMENT), details: c.message, metadata } };
}
