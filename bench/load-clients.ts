import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * Load generators for bench/load.ts, on node:http so that every response's
 * status and headers and every connection error is seen: closed loop (N
 * keep-alive connections, each sending its next request when the last is
 * answered), open loop (a fixed arrival rate, each request on a new
 * connection), and a probe (one request at a time on its own connection).
 */

export interface Sample {
  status?: number;
  /** from sending to the end of the response */
  ms: number;
  retryAfter?: string;
  connectionClose: boolean;
  /** a connection-level failure (ECONNRESET, ECONNREFUSED, …) */
  error?: string;
}

export interface Target {
  url: string;
  path: string;
  method?: string;
  body?: Buffer;
  headers?: Record<string, string>;
}

export function send(t: Target, agent: Agent | false): Promise<Sample> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...t.headers };
    if (t.body) headers['content-length'] = t.body.length;
    const req = request(`${t.url}${t.path}`, { method: t.method ?? (t.body ? 'POST' : 'GET'), agent, headers }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () =>
        resolve({ status: res.statusCode, ms: performance.now() - t0, retryAfter: res.headers['retry-after'], connectionClose: res.headers.connection === 'close' }),
      );
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ ms: performance.now() - t0, connectionClose: true, error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ms: performance.now() - t0, connectionClose: true, error: e.code ?? e.message }));
    req.end(t.body);
  });
}

export interface Stats {
  sent: number;
  byStatus: Record<string, number>;
  errors: Record<string, number>;
  okP50: number;
  okP99: number;
  okMax: number;
  rejectP50: number;
  rejectP99: number;
  /** share of 503s that carried Retry-After */
  retryAfterShare: number;
  seconds: number;
}

export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export function summarise(samples: Sample[], seconds: number): Stats {
  const byStatus: Record<string, number> = {};
  const errors: Record<string, number> = {};
  for (const s of samples) {
    if (s.error) errors[s.error] = (errors[s.error] ?? 0) + 1;
    else byStatus[String(s.status)] = (byStatus[String(s.status)] ?? 0) + 1;
  }
  const ok = samples.filter((s) => s.status === 200).map((s) => s.ms);
  const rejected = samples.filter((s) => s.status === 503);
  return {
    sent: samples.length,
    byStatus,
    errors,
    okP50: pct(ok, 50),
    okP99: pct(ok, 99),
    okMax: ok.length ? Math.max(...ok) : NaN,
    rejectP50: pct(rejected.map((s) => s.ms), 50),
    rejectP99: pct(rejected.map((s) => s.ms), 99),
    retryAfterShare: rejected.length ? rejected.filter((s) => s.retryAfter !== undefined).length / rejected.length : NaN,
    seconds,
  };
}

/** `connections` keep-alive connections, each sending again as soon as it is answered, until `seconds` pass (or `stop()` says so). */
export async function closedLoop(t: Target, connections: number, seconds: number, stop: () => boolean = () => false): Promise<Sample[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const until = performance.now() + seconds * 1000;
  const samples: Sample[] = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until && !stop()) samples.push(await send(t, agent));
    }),
  );
  agent.destroy();
  return samples;
}

/**
 * A fixed arrival rate for `seconds`, each request on a new connection,
 * whatever happened to the earlier ones (open loop). `cap` bounds the
 * requests in flight; arrivals beyond it are counted as not sent.
 */
export async function openLoop(t: Target, ratePerS: number, seconds: number, cap = 8192): Promise<{ samples: Sample[]; notSent: number }> {
  const samples: Sample[] = [];
  const inFlight = new Set<Promise<void>>();
  let notSent = 0;
  const t0 = performance.now();
  let issued = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * ratePerS);
    while (issued < due) {
      issued++;
      if (inFlight.size >= cap) {
        notSent++;
        continue;
      }
      const p = send(t, false).then((s) => {
        samples.push(s);
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inFlight);
  return { samples, notSent };
}

/**
 * One request at a time, every `intervalMs`, until `stop()`: on one kept-alive
 * connection of its own, or (`newConnections`) on a new connection each
 * time, as the kubelet's HTTP probes do (the connection then also waits in
 * the listen backlog and the accept loop).
 */
export async function probe(t: Target, intervalMs: number, stop: () => boolean, newConnections = false): Promise<Sample[]> {
  const agent = newConnections ? false : new Agent({ keepAlive: true, maxSockets: 1 });
  const samples: Sample[] = [];
  while (!stop()) {
    samples.push(await send(t, agent));
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  if (agent) agent.destroy();
  return samples;
}
