import type { ChildProcess } from 'node:child_process';
import { arg } from './cli';

/** `--service-env K=V,K=V`: more environment for the service under test. */
export function serviceEnvFlag(): Record<string, string> {
  return Object.fromEntries(
    arg('service-env', '')
      .split(',')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** The environment the benches start `s2s serve` with: loopback, one model set, its threads and workers, no drain wait. */
export function benchServiceEnv(o: { port: number; modelsDir: string; model: string; threads: number; workers: number }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(o.port),
    S2S_MODELS_DIR: o.modelsDir,
    S2S_MODEL: o.model,
    S2S_THREADS: String(o.threads),
    S2S_INFERENCE_WORKERS: String(o.workers),
    S2S_DRAIN_MS: '0',
  };
}

/** Resolves once readiness answers 200 (whatever the log level); rejects if the service exits first. */
export async function untilReady(url: string, child: ChildProcess): Promise<void> {
  const exited = new Promise<never>((_, fail) => child.on('exit', (code) => fail(new Error(`service exited (${code}) before it was ready`))));
  for (;;) {
    const ok = await Promise.race([fetch(`${url}/v2/health/ready`).then((r) => r.status === 200, () => false), exited]);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}
