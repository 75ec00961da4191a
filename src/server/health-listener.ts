import { Worker } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import { workerEntry } from '../runtime/worker/entry';
import { UserError } from '../util/errors';
import { HEARTBEAT_MS, HealthShared, HealthStart, HealthToMain, MainToHealth } from './health-protocol';
import type { Lifecycle } from './lifecycle';
import type { Metrics } from './metrics';

/**
 * Probes and the scrape on a port of their own (S2S_HEALTH_PORT), served
 * from a thread of their own (health-worker.ts). On the traffic port a
 * probe's connection waits in the same listen backlog, accept loop,
 * connection cap and HTTP parsing order as a flood's; a second listener on
 * the same event loop still waits for that loop's turns, which a flood of
 * 1,024 connections stretches past 100 ms (measured: bench/load.ts, README
 * "Under load"). Under overload — exactly when a restart would hurt most —
 * the kubelet would time out a process that is well. Here the probe meets
 * none of that: no admission, auth, rate limit or load shedding, its own
 * event loop, the same liveness and readiness (readiness is the Lifecycle's,
 * so it turns 503 on SIGTERM here too). Liveness fails when the main event
 * loop has not turned for `stallMs`, so a wedged process is still restarted.
 */

/**
 * Connections the health listener keeps at most: kubelet opens one per
 * probe and closes it, a scraper keeps one or two; the cap only stops a
 * stray client from spending the process's file descriptors here.
 */
export const HEALTH_MAX_CONNECTIONS = 256;
/** Liveness says 503 once the main event loop has not turned for this long (load shedding starts at 500 ms of lag). */
export const EVENT_LOOP_STALL_MS = 5000;

export interface HealthListener {
  url: string;
  close(): Promise<void>;
}

export async function startHealthListener(opts: { host: string; port: number; lifecycle: Lifecycle; metrics: Metrics; logger: FastifyBaseLogger; stallMs?: number }): Promise<HealthListener> {
  const shared = new HealthShared();
  shared.heartbeat();
  const beating = setInterval(() => shared.heartbeat(), HEARTBEAT_MS);
  beating.unref();
  shared.setReady(opts.lifecycle.ready);
  opts.lifecycle.onChange(() => shared.setReady(opts.lifecycle.ready));

  const start: HealthStart = { host: opts.host, port: opts.port, maxConnections: HEALTH_MAX_CONNECTIONS, stallMs: opts.stallMs ?? EVENT_LOOP_STALL_MS, shared: shared.buffer };
  const entry = workerEntry(__dirname, 'health-worker');
  const worker = new Worker(entry.file, { execArgv: entry.execArgv, name: 'health', workerData: start });
  const send = (m: MainToHealth) => worker.postMessage(m);
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  worker.on('message', (m: HealthToMain) => {
    if (!('scrape' in m)) return;
    opts.metrics.registry.metrics().then(
      (text) => send({ scraped: m.scrape, text, contentType: opts.metrics.registry.contentType }),
      () => undefined, // the worker answers 503 when no text comes
    );
  });
  const url = await new Promise<string>((ok, fail) => {
    const onMessage = (m: HealthToMain) => {
      if ('listening' in m) ok(m.listening);
      else if ('error' in m) fail(m.error);
      else return;
      worker.off('message', onMessage);
    };
    worker.on('message', onMessage);
    worker.once('error', (e) => fail(e.message));
    worker.once('exit', (code) => fail(`exited (${code})`));
  }).catch(async (why: string) => {
    clearInterval(beating);
    await worker.terminate();
    throw new UserError(`cannot listen for health probes on ${opts.host}:${opts.port} (${why})`);
  });
  let closing: Promise<void> | undefined;
  // Probes then fail and the kubelet restarts the pod, which is right; the log says why.
  worker.once('exit', (code) => closing || opts.logger.error({ code }, 'the health listener stopped; probes will fail'));
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        send({ close: true });
        await exited;
        clearInterval(beating);
      })()),
  };
}
