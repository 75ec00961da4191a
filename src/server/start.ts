import type { FastifyInstance } from 'fastify';
import pino, { Logger } from 'pino';
import sharp from 'sharp';
import { GrpcServer, startGrpcServer } from '../grpc/server';
import { ModelRegistry, selectModelSets } from '../models/registry';
import type { ServedModel } from '../serving/served-model';
import { UserError } from '../util/errors';
import { buildApp } from './app';
import type { Config } from './config';
import { watchEventLoopDelay } from './event-loop';
import { HealthListener, startHealthListener } from './health-listener';
import { Lifecycle, trackConnections } from './lifecycle';
import { Metrics } from './metrics';
import { inferenceThreads, loadServedModel } from './model-loading';
import { loadOpenApi } from './openapi';

export { inferenceThreads };

/**
 * Process-level start and stop: load and verify the model sets, listen, and
 * on SIGTERM drain — readiness 503 first, keep serving for drainMs while load
 * balancers take the replica out, then stop accepting, finish what is in
 * flight, release the sessions and exit. SIGINT (Ctrl-C) skips the wait.
 * The health listener (S2S_HEALTH_PORT), when there is one, closes last:
 * its readiness says 503 throughout the drain and liveness 200 until exit.
 */

/**
 * The service's logger. Without a destination it writes to stdout; `sync`
 * false (the service's default, LOG_SYNC) makes those writes asynchronous:
 * a request's log line no longer costs a write(2) on the event loop, lines
 * that arrive while a write is in flight go out together, and pino flushes
 * what is left synchronously when the process exits.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, sync = true): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 's2s' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Secrets never reach the log even if a serializer starts including headers.
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'headers.authorization', 'headers["x-api-key"]'], censor: '[redacted]' },
  };
  return pino(options, destination ?? pino.destination({ dest: 1, sync }));
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  /** the health listener's URL (S2S_HEALTH_PORT); undefined when probes are only on the traffic port */
  healthUrl?: string;
  models: ModelRegistry<ServedModel>;
  /** Drains and closes; resolves when everything in flight has finished. */
  shutdown(signal?: 'SIGTERM' | 'SIGINT'): Promise<void>;
  /** resolves once the server has closed, whoever closed it */
  closed: Promise<void>;
}

export async function loadModels(config: Config, metrics: Metrics, logger: Logger): Promise<ModelRegistry<ServedModel>> {
  const names = selectModelSets(config.modelsDir, config.model, config.loadModels);
  const threads = inferenceThreads(config);
  const served: ServedModel[] = [];
  // A set that fails to load must not leave the inference workers of the ones before it running.
  try {
    for (const name of names) served.push(await loadServedModel(config, metrics, logger, name, threads));
  } catch (e) {
    await Promise.all(served.map((m) => m.close().catch(() => undefined)));
    throw e;
  }
  return new ModelRegistry(served, config.model);
}

export async function startServer(config: Config, opts: { logger?: Logger; handleSignals?: boolean } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel, undefined, config.logSync);
  // libvips's operation cache only helps when the same image comes twice; a server's images do not.
  sharp.cache(false);
  const metrics = new Metrics();
  const lifecycle = new Lifecycle(metrics);
  const stopWatching = watchEventLoopDelay(metrics.registry);
  let models: ModelRegistry<ServedModel>;
  try {
    models = await loadModels(config, metrics, logger);
  } catch (e) {
    stopWatching();
    throw e;
  }
  const doc = loadOpenApi();
  const app = await buildApp({ config, models, metrics, lifecycle, logger, doc }).catch(async (e) => {
    await Promise.all(models.all().map((m) => m.close().catch(() => undefined)));
    stopWatching();
    throw e;
  });
  // Node's close() calls closeIdleConnections(); this one also bounds how long a silent new connection may hold the exit.
  const connections = trackConnections(app.server);
  app.server.closeIdleConnections = () => connections.closeIdle();
  let markClosed!: () => void;
  const closed = new Promise<void>((r) => (markClosed = r));
  let health: HealthListener | undefined;
  let closing: Promise<void> | undefined;
  app.addHook('onClose', async () => {
    await Promise.all(models.all().map((m) => m.close()));
    // shutdown() closes it after gRPC too; this covers an app.close() from elsewhere
    if (!closing) await health?.close();
    stopWatching();
    markClosed();
  });
  let url: string;
  try {
    url = await app.listen({ port: config.port, host: config.host, backlog: config.listenBacklog });
  } catch (e) {
    await app.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new UserError(`cannot listen on ${config.host}:${config.port} (${code})`);
    throw e;
  }
  let grpcServer: GrpcServer | undefined;
  if (config.grpcPort !== undefined) {
    try {
      grpcServer = await startGrpcServer({ config, models, metrics, lifecycle, logger, host: config.host, port: config.grpcPort });
    } catch (e) {
      await app.close();
      throw e;
    }
  }
  if (config.healthPort !== undefined) {
    try {
      health = await startHealthListener({ host: config.host, port: config.healthPort, lifecycle, metrics, logger });
    } catch (e) {
      await Promise.all([app.close(), grpcServer?.close()]);
      throw e;
    }
  }
  lifecycle.markReady();
  logger.info({ url, ...(health ? { health: health.url } : {}), ...(grpcServer ? { grpc: grpcServer.address } : {}), models: models.names(), default: models.defaultName, policy: config.detectionPolicy, auth: config.apiKeys.length > 0 }, 'ready');

  const shutdown = (signal?: 'SIGTERM' | 'SIGINT'): Promise<void> => {
    if (closing) return closing;
    closing = (async () => {
      lifecycle.startDraining();
      grpcServer?.draining();
      const wait = signal === 'SIGINT' ? 0 : config.drainMs;
      logger.info({ signal, drainMs: wait }, 'draining: readiness is 503, still serving');
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      logger.info('closing: no new connections; finishing in-flight requests');
      await Promise.all([app.close(), grpcServer?.close()]);
      // Last: until both traffic listeners have finished, a probe still learns the process is alive and not ready.
      await health?.close();
      logger.info('stopped');
    })();
    return closing;
  };

  if (opts.handleSignals) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        if (closing) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(1);
        }
        // Bound the whole shutdown: a wedged request must not keep a terminating pod forever.
        setTimeout(() => {
          logger.error('shutdown took too long; exiting');
          process.exit(1);
        }, config.drainMs + config.requestTimeoutMs + 5000).unref();
        shutdown(signal).then(
          () => {
            logger.flush?.();
            process.exitCode = 0;
          },
          (e) => {
            logger.error({ err: e }, 'shutdown failed');
            process.exit(1);
          },
        );
      });
    }
  }
  return { app, url, healthUrl: health?.url, models, shutdown, closed };
}
