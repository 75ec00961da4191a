import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatcherObserver } from '../serving/batcher';

/**
 * The service's Prometheus metrics. Names, types and labels are the contract
 * in docs/metrics.md (dashboards and alerts depend on them): change both
 * together or not at all.
 */

export type RejectionReason = 'queue_full' | 'deadline' | 'overloaded' | 'rate_limited' | 'unauthorized' | 'bad_input' | 'detected';
export const REJECTION_REASONS: readonly RejectionReason[] = ['queue_full', 'deadline', 'overloaded', 'rate_limited', 'unauthorized', 'bad_input', 'detected'];
export type Stage = 'decode' | 'queue_wait' | 'inference' | 'postprocess';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 's2s_http_request_duration_seconds',
    help: 'Duration of HTTP requests, by route template, method and status code.',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly stageDuration = new Histogram({
    name: 's2s_stage_duration_seconds',
    help: 'Duration of one stage of one request (decode, queue_wait, inference, postprocess).',
    labelNames: ['stage', 'model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 's2s_batch_size',
    help: 'Images per session run.',
    labelNames: ['model'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 's2s_queue_depth',
    help: 'Images waiting for a batch (queued or being decoded with room reserved).',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: 's2s_rejections_total',
    help: 'Requests refused, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly detections = new Counter({
    name: 's2s_detections_total',
    help: 'Detection verdicts, one per image.',
    labelNames: ['model', 'verdict'] as const,
    registers: [this.registry],
  });
  readonly images = new Counter({
    name: 's2s_images_total',
    help: 'Images classified.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly modelInfo = new Gauge({
    name: 's2s_model_info',
    help: 'Loaded model sets (always 1), with version and execution provider.',
    labelNames: ['model', 'version', 'execution_provider'] as const,
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 's2s_ready',
    help: '1 when ready to serve, 0 while starting or draining.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges *_total, which promtool rejects (a _total suffix promises a counter).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    // Every reason exists from the start, so rate() over a quiet reason is 0, not "no data".
    for (const r of REJECTION_REASONS) this.rejections.inc({ reason: r }, 0);
    this.ready.set(0);
  }

  reject(reason: RejectionReason): void {
    this.rejections.inc({ reason });
  }

  /** Registers a served model set: its info series and zeroed per-model series. */
  addModel(model: string, version: string, provider: string): void {
    this.modelInfo.set({ model, version, execution_provider: provider }, 1);
    this.images.inc({ model }, 0);
    for (const verdict of ['clean', 'adversarial']) this.detections.inc({ model, verdict }, 0);
    this.queueDepth.set({ model }, 0);
  }

  observeStage(stage: Stage, model: string, seconds: number): void {
    this.stageDuration.observe({ stage, model }, seconds);
  }

  /** What a model's batcher reports, as metrics. */
  batcherObserver(model: string): BatcherObserver {
    return {
      depth: (n) => this.queueDepth.set({ model }, n),
      batch: (size) => this.batchSize.observe({ model }, size),
      rejected: (reason) => this.reject(reason),
    };
  }
}

/** Times every request by route template, and serves GET /metrics. */
export const metricsPlugin = fp(async (app: FastifyInstance, opts: { metrics: Metrics }) => {
  const m = opts.metrics;
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    m.httpDuration.observe({ route, method: req.method, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { config: { public: true, rateLimit: false }, logLevel: 'warn' }, async (_req, reply) => {
    reply.type(m.registry.contentType);
    return m.registry.metrics();
  });
});
