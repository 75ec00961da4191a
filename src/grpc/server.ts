import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { UserError } from '../util/errors';
import { inferenceService, SERVICE_NAME } from './proto';
import { GrpcDeps, inferenceHandlers } from './service';

/**
 * The gRPC listener: `inference.GRPCInferenceService` plus the standard
 * `grpc.health.v1.Health` (what Kubernetes gRPC probes call). Health says
 * SERVING while the service is ready and NOT_SERVING once it drains, for the
 * server ('') and for the inference service by name.
 */

export interface GrpcServer {
  /** host:port it listens on */
  address: string;
  port: number;
  /** health turns NOT_SERVING (the service keeps answering until close) */
  draining(): void;
  /** stops accepting calls, lets the ones in flight finish */
  close(): Promise<void>;
}

export async function startGrpcServer(deps: GrpcDeps & { host: string; port: number }): Promise<GrpcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': deps.config.bodyLimit,
    // HTTP's request timeout has a gRPC twin in per-call deadlines; idle connections still get reaped
    'grpc.max_connection_idle_ms': 5 * 60 * 1000,
  });
  server.addService(inferenceService(), inferenceHandlers(deps));
  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);

  const host = deps.host.includes(':') ? `[${deps.host}]` : deps.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${deps.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  ).catch((e: Error) => {
    throw new UserError(`cannot listen for gRPC on ${host}:${deps.port} (${e.message})`);
  });
  const setAll = (status: 'SERVING' | 'NOT_SERVING') => {
    health.setStatus('', status);
    health.setStatus(SERVICE_NAME, status);
  };
  return {
    address: `${host}:${port}`,
    port,
    draining: () => setAll('NOT_SERVING'),
    close: () =>
      new Promise<void>((resolve) => {
        setAll('NOT_SERVING');
        server.tryShutdown(() => resolve());
      }),
  };
}
