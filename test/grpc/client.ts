import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { protoPath as HEALTH_PROTO } from 'grpc-health-check';
import type { TestServer } from '../server/harness';
import { logObjects } from '../server/harness';

/**
 * A plain grpc-js client of the published `inference.GRPCInferenceService`
 * (proto/grpc_predict_v2.proto) and of grpc.health.v1, with promise-returning
 * calls. Nothing here comes from the server's code.
 */

const PROTO = join(__dirname, '..', '..', 'proto', 'grpc_predict_v2.proto');
const OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

export type Call = (method: string, request: object, metadata?: Record<string, string>) => Promise<any>;

export interface GrpcClients {
  inference: Call;
  health: Call;
  close(): void;
}

/** The gRPC address from the server's "ready" log line. */
export function grpcAddress(s: TestServer): string {
  const ready = logObjects(s).find((l) => l.msg === 'ready');
  if (!ready?.grpc) throw new Error('the server logged no gRPC address (is S2S_GRPC_PORT set?)');
  return ready.grpc as string;
}

function promisify(client: grpc.Client): Call {
  return (method, request, metadata = {}) =>
    new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      (client as unknown as Record<string, (...args: unknown[]) => void>)[method](request, md, { deadline: Date.now() + 20000 }, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)));
    });
}

export function connect(address: string): GrpcClients {
  const inference = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, OPTIONS)) as any;
  const health = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH_PROTO, OPTIONS)) as any;
  const a = new inference.inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
  const h = new health.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  return {
    inference: promisify(a),
    health: promisify(h),
    close: () => {
      a.close();
      h.close();
    },
  };
}
