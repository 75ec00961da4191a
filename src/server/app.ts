import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { FastifyBaseLogger, FastifyInstance } from 'fastify';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { ModelRegistry } from '../models/registry';
import type { ServedModel } from '../serving/served-model';
import { authPlugin } from './auth';
import type { Config } from './config';
import { errorsPlugin } from './errors';
import { bodyParsersPlugin } from './inputs';
import { Lifecycle, lifecyclePlugin } from './lifecycle';
import { admissionPlugin, loadSheddingPlugin, rateLimitPlugin } from './limits';
import { Metrics, metricsPlugin } from './metrics';
import { OpenApiDoc, docsPlugin, loadOpenApi } from './openapi';
import { CertifyRouteOptions, certifyRoutes } from './routes/certify';
import { classifyRoutes } from './routes/classify';
import { healthRoutes } from './routes/health';
import { v2Routes } from './v2/routes';
import { RequestLog, requestLogPlugin } from '../telemetry/request-log';

declare module 'fastify' {
  interface FastifyInstance {
    /** the model sets being served */
    models: ModelRegistry<ServedModel>;
    metrics: Metrics;
    lifecycle: Lifecycle;
  }
}

export interface AppDeps {
  config: Config;
  models: ModelRegistry<ServedModel>;
  metrics: Metrics;
  lifecycle: Lifecycle;
  logger: FastifyBaseLogger;
  doc?: OpenApiDoc;
  /** tests only: seeded certification noise instead of the CSPRNG (never set by `s2s serve`) */
  testOnlyCertifyNoise?: CertifyRouteOptions['testOnlyNoise'];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller's X-Request-Id when it is a sane token (it ends up in logs), else a fresh UUID. */
function requestId(req: IncomingMessage): string {
  const h = req.headers['x-request-id'];
  return typeof h === 'string' && REQUEST_ID.test(h) ? h : randomUUID();
}

/**
 * Request validation from openapi.yaml's schemas: query and path values are
 * strings on the wire and get coerced; JSON bodies are taken as sent.
 */
function validators() {
  const make = (coerceTypes: boolean) => {
    const ajv = new Ajv({ strict: false, allErrors: false, coerceTypes, useDefaults: true });
    addFormats(ajv);
    return ajv;
  };
  const coercing = make(true);
  const exact = make(false);
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? exact : coercing).compile(schema);
}

/**
 * The service, composed top to bottom: errors and request ids, metrics,
 * lifecycle, admission (connection cap, full queues), load shedding, auth, rate limits, body parsing, /docs, routes.
 * Cross-cutting plugins come first so their hooks cover every route.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const requestLog = new RequestLog();
  const app = Fastify({
    loggerInstance: deps.logger,
    genReqId: requestId,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    requestTimeout: config.requestTimeoutMs + 5000,
    // Requests already on a connection when shutdown starts are served, not refused.
    return503OnClosing: false,
    // start.ts decides which connections close at shutdown (lifecycle.ts, trackConnections)
    forceCloseConnections: false,
    routerOptions: { ignoreTrailingSlash: true },
    logController: requestLog,
  });
  app.setValidatorCompiler(validators());
  app.decorate('models', deps.models);
  app.decorate('metrics', deps.metrics);
  app.decorate('lifecycle', deps.lifecycle);
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-request-id', req.id);
    return payload;
  });
  // Only the media types the contract names are parsed; text/plain would otherwise reach the routes.
  app.removeContentTypeParser('text/plain');
  const doc = deps.doc ?? loadOpenApi();

  await app.register(requestLogPlugin, { apiKeys: config.apiKeys, registry: deps.metrics.registry, controller: requestLog });
  await app.register(errorsPlugin, { metrics: deps.metrics });
  await app.register(metricsPlugin, { metrics: deps.metrics });
  await app.register(lifecyclePlugin, { lifecycle: deps.lifecycle });
  await app.register(admissionPlugin, { maxConnections: config.maxConnections, metrics: deps.metrics });
  await app.register(loadSheddingPlugin, { maxEventLoopDelayMs: config.maxEventLoopDelayMs, metrics: deps.metrics });
  await app.register(authPlugin, { keys: config.apiKeys, metrics: deps.metrics });
  await app.register(rateLimitPlugin, config.rateLimit ? { ...config.rateLimit, metrics: deps.metrics } : { metrics: deps.metrics });
  const maxImageValues = () => Math.max(1, ...deps.models.all().map((m) => m.imageSize));
  await app.register(bodyParsersPlugin, { bodyLimit: config.bodyLimit, maxParts: config.maxParts, maxImageValues });
  await app.register(docsPlugin, { doc });

  await app.register(healthRoutes, { doc });
  await app.register(classifyRoutes, { doc, config });
  await app.register(certifyRoutes, { doc, config, testOnlyNoise: deps.testOnlyCertifyNoise });
  await app.register(v2Routes, { doc, config });
  return app;
}
