import { IncomingMessage, ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { HealthShared, HealthStart, HealthToMain, MainToHealth, METRICS_TIMEOUT_MS, isLive, isReady } from './health-protocol';

/**
 * The health listener's thread: a bare node:http server with an event loop
 * of its own, so a probe is answered while the main thread is busy with a
 * flood (accepting, parsing, refusing). What it says comes from the main
 * thread through shared memory: readiness as the Lifecycle sets it, and a
 * heartbeat the main event loop writes — liveness fails when that loop has
 * not turned for the stall limit, so a wedged process is still restarted.
 * /metrics is rendered by the main thread (the registry lives there).
 */

const start = workerData as HealthStart;
const shared = new HealthShared(start.shared);
const port = parentPort!;
const post = (m: HealthToMain) => port.postMessage(m);
const scrapes = new Map<number, ServerResponse>();
let nextScrape = 0;

function json(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
  const known = path === '/v2/health/live' || path === '/v2/health/ready' || path === '/metrics';
  if (!known) return json(res, 404, { error: `no route ${req.method} ${path} on the health listener (probes and /metrics only)`, code: 'not_found' });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return json(res, 405, { error: `${req.method} ${path}: GET only`, code: 'method_not_allowed' });
  }
  if (path === '/v2/health/live') {
    const live = isLive(shared, start.stallMs);
    return json(res, live ? 200 : 503, { live });
  }
  if (path === '/v2/health/ready') {
    const ready = isReady(shared, start.stallMs);
    return json(res, ready ? 200 : 503, { ready });
  }
  const id = nextScrape++;
  scrapes.set(id, res);
  post({ scrape: id });
  setTimeout(() => {
    if (scrapes.delete(id)) json(res, 503, { error: `the main thread did not render the metrics within ${METRICS_TIMEOUT_MS} ms`, code: 'unavailable' });
  }, METRICS_TIMEOUT_MS).unref();
}

const server = createServer(handle);
server.maxConnections = start.maxConnections;
server.on('error', (e: NodeJS.ErrnoException) => post({ error: e.code ?? e.message }));
server.listen(start.port, start.host, () => {
  const a = server.address() as AddressInfo;
  post({ listening: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` });
});

port.on('message', (m: MainToHealth) => {
  if ('scraped' in m) {
    const res = scrapes.get(m.scraped);
    if (!res || !scrapes.delete(m.scraped)) return;
    res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.text) });
    res.end(m.text);
  } else if ('close' in m) {
    // Probe connections are short and a scrape is cheap to retry: nothing here is worth holding the exit for.
    server.close(() => process.exit(0));
    server.closeAllConnections();
  }
});
