import { Context, Span, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator, hrTime } from '@opentelemetry/core';
import type { NodeSDK } from '@opentelemetry/sdk-node';

/**
 * OpenTelemetry tracing, off unless an OTLP endpoint is configured
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; every
 * other OTEL_* variable works as the SDK documents it). Off, every helper
 * here is a no-op apart from reading an incoming W3C `traceparent`, whose
 * trace id still goes into the request log line so logs join the caller's trace.
 */

const w3c = new W3CTraceContextPropagator();
const headerGetter = {
  keys: (h: Record<string, unknown>) => Object.keys(h),
  get: (h: Record<string, unknown>, key: string) => {
    const v = h[key];
    return typeof v === 'string' || Array.isArray(v) ? (v as string | string[]) : undefined;
  },
};

let sdk: NodeSDK | undefined;

export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim()).includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export function tracingEnabled(): boolean {
  return sdk !== undefined;
}

/** Starts the SDK (traces only: metrics stay on /metrics, logs on stdout) when configured. */
export function startTracing(env: NodeJS.ProcessEnv = process.env): boolean {
  if (sdk || !tracingConfigured(env)) return false;
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  env.OTEL_SERVICE_NAME ??= 's2s';
  // Loaded only when tracing is on: the SDK and its exporters cost start-up time nobody else should pay.
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const started = new NodeSDK({ instrumentations: [], textMapPropagator: w3c });
  started.start();
  sdk = started;
  return true;
}

/** Flushes the spans still buffered and stops the SDK (at shutdown). */
export async function stopTracing(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown();
}

/** The caller's trace context from a `traceparent` header (W3C), or the root context. */
export function extractContext(headers: Record<string, unknown>): Context {
  return w3c.extract(context.active(), headers, headerGetter);
}

/** Trace id of an incoming traceparent, valid or not-sampled alike; undefined without one. */
export function incomingTraceId(ctx: Context): string | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && sc.traceId !== '00000000000000000000000000000000' ? sc.traceId : undefined;
}

/** The server span of one request, child of the caller's trace; undefined when tracing is off. */
export function startRequestSpan(name: string, parent: Context, attributes: Record<string, string | number>): Span | undefined {
  if (!sdk) return undefined;
  // Every time on one clock (time origin + performance.now(), as HrTime): the SDK's own defaults re-anchor
  // each span on Date.now(), whose millisecond steps could put a stage's end after its request's.
  return trace.getTracer('s2s').startSpan(name, { kind: SpanKind.SERVER, attributes, startTime: hrTime() }, parent);
}

/** A finished stage (decode, queue, inference, response) as a child span with its measured times (performance.now() ms). */
export function recordStage(parent: Span | undefined, name: string, startMs: number, endMs: number, attributes: Record<string, string | number> = {}): void {
  if (!parent) return;
  const ctx = trace.setSpan(context.active(), parent);
  const span = trace.getTracer('s2s').startSpan(name, { startTime: hrTime(startMs), attributes }, ctx);
  span.end(hrTime(Math.max(startMs, endMs)));
}

export function endRequestSpan(span: Span | undefined, status: number, attributes: Record<string, string | number>): void {
  if (!span) return;
  span.setAttributes({ 'http.response.status_code': status, ...attributes });
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end(hrTime());
}

