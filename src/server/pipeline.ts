import { performance } from 'node:perf_hooks';
import type { FastifyReply } from 'fastify';
import type { Timed } from '../serving/batcher';
import type { ImageResult, ServedModel } from '../serving/served-model';
import type { Metrics } from './metrics';
import { tracePipeline } from '../telemetry/request-log';
import type { RequestRecord } from '../telemetry/request-context';

/**
 * The path every route shares: reserve room in the model's queue (503 at once
 * when full, before any decoding), prepare each image's pixels (decode, or
 * read a V2 tensor), run them through the batcher, and record per-stage
 * durations. Routes only turn requests into `prepare` and results into replies.
 */

export interface PipelineRequest {
  model: ServedModel;
  count: number;
  /** pixels of image i, C·H·W floats in [0,1] */
  prepare(i: number): Promise<Float32Array>;
  sigma: number;
  reconstruction: boolean;
  /** ms left before the request's deadline */
  budgetMs: number;
  /** the request's log record (`req.s2sRecord`): its stages become spans when tracing is on */
  record?: RequestRecord;
}

export interface PipelineResult {
  results: Array<Timed<ImageResult> & { decodeMs: number }>;
}

export async function runPipeline(req: PipelineRequest, metrics: Metrics): Promise<PipelineResult> {
  const { model } = req;
  const ticket = model.batcher.reserve(req.count);
  const t0 = performance.now();
  const decodeMs: number[] = new Array(req.count).fill(0);
  let pixels: Float32Array[];
  try {
    pixels = await Promise.all(
      Array.from({ length: req.count }, async (_, i) => {
        const s = performance.now();
        const p = await req.prepare(i);
        decodeMs[i] = performance.now() - s;
        return p;
      }),
    );
  } catch (e) {
    ticket.cancel();
    throw e;
  }
  const decodedAt = performance.now();
  metrics.observeStage('decode', model.name, (decodedAt - t0) / 1000);
  const deadline = t0 + req.budgetMs;
  const timed = await ticket.submit(
    pixels.map((p) => ({ pixels: p, sigma: req.sigma, reconstruction: req.reconstruction })),
    deadline,
  );
  metrics.observeStage('queue_wait', model.name, Math.max(...timed.map((t) => t.queueMs)) / 1000);
  metrics.observeStage('inference', model.name, Math.max(...timed.map((t) => t.inferenceMs)) / 1000);
  tracePipeline(req.record, t0, decodedAt, Math.max(...timed.map((t) => t.queueMs)), Math.max(...timed.map((t) => t.inferenceMs)), model.name, req.count);
  return { results: timed.map((t, i) => ({ ...t, decodeMs: decodeMs[i] })) };
}

/** Milliseconds left of the request's budget. */
export function budgetLeft(reply: FastifyReply, timeoutMs: number): number {
  return Math.max(0, timeoutMs - reply.elapsedTime);
}
