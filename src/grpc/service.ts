import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ModelRegistry } from '../models/registry';
import type { ServedModel } from '../serving/served-model';
import { UserError } from '../util/errors';
import type { Config } from '../server/config';
import type { Lifecycle } from '../server/lifecycle';
import type { Metrics } from '../server/metrics';
import { runInfer } from '../server/v2/infer';
import { modelAt, modelMetadata, serverExtensions, SERVER_NAME, SERVER_VERSION } from '../server/v2/metadata';
import { grpcAuthenticator } from './auth';
import { fromGrpc, toGrpc } from './parameters';
import { ModelInferRequest, ModelInferResponse, SERVICE_NAME } from './proto';
import { grpcRateLimiter } from './rate-limit';
import { toGrpcError } from './status';
import { inputsFromGrpc, outputsToGrpc } from './tensors';

/**
 * The handlers of `inference.GRPCInferenceService`. Each call is
 * authenticated and rate-limited like HTTP (liveness and readiness stay
 * open, as the HTTP probes do), timed into s2s_http_request_duration_seconds under its gRPC
 * path with the HTTP-equivalent status, logged once, and inference goes
 * through the same runInfer → pipeline → batcher as POST /v2/…/infer.
 */

export interface GrpcDeps {
  config: Config;
  models: ModelRegistry<ServedModel>;
  metrics: Metrics;
  lifecycle: Lifecycle;
  logger: Logger;
}

type Handler<Req, Res> = (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

export function inferenceHandlers(deps: GrpcDeps): grpc.UntypedServiceImplementation {
  const { config, models, metrics, lifecycle, logger } = deps;
  const authenticate = grpcAuthenticator(config.apiKeys);
  const limit = grpcRateLimiter(config.rateLimit);
  /** "ipv4:127.0.0.1:5123" → "ip:127.0.0.1" */
  const address = (peer: string) => `ip:${peer.replace(/^ipv[46]:/, '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '')}`;

  const unary = <Req, Res>(method: string, open: boolean, fn: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> => {
    const route = `/${SERVICE_NAME}/${method}`;
    return (call, callback) => {
      const t0 = performance.now();
      const done = (status: number, err: Partial<grpc.StatusObject> | null, res?: Res) => {
        const seconds = (performance.now() - t0) / 1000;
        metrics.httpDuration.observe({ route, method: 'GRPC', status_code: String(status) }, seconds);
        const line = { protocol: 'grpc', method: route, status, ms: Math.round(seconds * 1e5) / 100 };
        if (status >= 500 && status !== 503) logger.error({ ...line, reason: err?.details }, 'request errored');
        else logger[open ? 'debug' : 'info'](status >= 400 ? { ...line, reason: err?.details } : line, 'request completed');
        callback(err, res);
      };
      let result: Promise<Res>;
      try {
        if (!open) limit(authenticate(call.metadata) ?? address(call.getPeer()));
        result = fn(call.request, call);
      } catch (e) {
        result = Promise.reject(e);
      }
      result.then(
        (res) => done(200, null, res),
        (e) => {
          const f = toGrpcError(e);
          if (f.httpStatus === 401) metrics.reject('unauthorized');
          else if (f.httpStatus === 429) metrics.reject('rate_limited');
          else if (f.httpStatus >= 400 && f.httpStatus < 500 && f.httpStatus !== 422) metrics.reject('bad_input');
          if (f.httpStatus >= 500 && f.httpStatus !== 503) logger.error({ err: e }, 'grpc call failed');
          done(f.httpStatus, f.error);
        },
      );
    };
  };

  /** ms left: the call's deadline, capped by the service's own request timeout */
  const budget = (call: grpc.ServerUnaryCall<unknown, unknown>) => {
    const d = call.getDeadline();
    const left = d instanceof Date ? d.getTime() - Date.now() : Number.isFinite(d) ? (d as number) - Date.now() : Infinity;
    return Math.max(0, Math.min(config.requestTimeoutMs, left));
  };

  return {
    ServerLive: unary('ServerLive', true, async () => ({ live: true })),
    ServerReady: unary('ServerReady', true, async () => ({ ready: lifecycle.ready })),
    ModelReady: unary('ModelReady', false, async (req: { name: string; version: string }) => {
      modelAt(models, req.name, req.version);
      return { ready: lifecycle.ready };
    }),
    ServerMetadata: unary('ServerMetadata', false, async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: serverExtensions(config.modelControl) })),
    ModelMetadata: unary('ModelMetadata', false, async (req: { name: string; version: string }) => {
      const m = modelAt(models, req.name, req.version);
      // gRPC metadata has a string map the HTTP form lacks: the class labels travel there
      return { ...modelMetadata(m), properties: { labels: JSON.stringify(m.labels), detection_threshold: String(m.threshold) } };
    }),
    ModelInfer: unary('ModelInfer', false, async (req: ModelInferRequest, call): Promise<ModelInferResponse> => {
      const model = modelAt(models, req.model_name, req.model_version);
      const result = await runInfer(
        {
          model,
          parameters: fromGrpc(req.parameters),
          inputs: inputsFromGrpc(req),
          outputs: req.outputs.length ? req.outputs.map((o) => o.name) : undefined,
          budgetMs: budget(call),
        },
        config,
        metrics,
      );
      metrics.images.inc({ model: model.name }, result.detections.length);
      for (const d of result.detections) metrics.detections.inc({ model: model.name, verdict: d.verdict });
      const flagged = result.detections.filter((d) => d.verdict === 'adversarial').length;
      if (config.detectionPolicy === 'reject' && flagged > 0) {
        metrics.reject('detected');
        throw new UserError(`${flagged} of ${result.detections.length} image${result.detections.length > 1 ? 's' : ''} flagged as adversarial (detection score above the model's threshold)`, 422);
      }
      return {
        model_name: model.name,
        model_version: model.version,
        id: req.id,
        parameters: toGrpc({ noise_sigma: result.sigma, detection_threshold: model.threshold }),
        ...outputsToGrpc(result.outputs, req.raw_input_contents.length > 0),
      };
    }),
  };
}
