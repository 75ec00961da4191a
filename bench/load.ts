/**
 * Load harness for the live service (not a test: it measures time). It
 * starts `s2s serve` on loopback in its own process and prints, in one run:
 *   1. capacity at concurrency 32 (images/s, mean batch), alternating with
 *      the same serving graph run in this process at that batch size with
 *      the service's own thread settings (no spinning): the throughput ratio;
 *   2. one raw-tensor request at a time (V2 JSON) against one in-process run
 *      at batch 1: the p50 overhead; PNG decode time on its own;
 *   3. 4× capacity, closed loop (1024 keep-alive connections) and open loop
 *      (a fixed arrival rate of 4× capacity, each request on a new
 *      connection): connection errors, 503s with Retry-After, goodput,
 *      accepted p99 against the documented queue bound, 503 latency,
 *      event-loop delay p99 (the service's own monitorEventLoopDelay, from
 *      /metrics) and liveness-probe p99 during the load — on the traffic
 *      port and, in the same run, on the health listener (S2S_HEALTH_PORT,
 *      which the harness turns on unless --service-env sets it empty), each
 *      on a kept-alive connection and on a new connection per probe (the
 *      kubelet's way), from a process of their own (bench/support/prober.ts);
 *   4. hostile bodies (10 MB nested JSON on /v1 and V2, a 10 MB array, a GIF
 *      pixel bomb) beside a legitimate client: its latency with and without;
 *   5. SIGTERM under steady load, several runs on fresh services: failed
 *      and completed requests (clients stop sending when readiness turns
 *      503, as a load balancer would);
 *   6. a soak: RSS at 60 s and at the end.
 * The load generators run on the same machine as the service and take CPU
 * from it; the printout says how loaded the machine was.
 *
 *   npx tsx bench/load.ts [--phase-s 10] [--soak-s 75] [--sigterm-runs 5] [--threads 0] [--workers 1]
 *                         [--queue-limit 256] [--max-queue-wait-ms 250] [--models-dir DIR --model NAME] [--skip soak,sigterm,…]
 *                         [--service-env K=V,K=V]   (more environment for the service, e.g. S2S_INFERENCE_NICE=10)
 *                         [--client-nice N]   (lower the load generators N nice steps once the service runs, so that
 *                                              clients sharing its cores do not outrank its inference threads)
 * bench/load-ab.ts runs it for several settings in alternation and tabulates them.
 */
import { ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadModelSet } from '../src/models/loader';
import { allowedCores } from '../src/runtime/cpu-budget';
import { createSession } from '../src/runtime/session';
import { loadServingGraph } from '../src/serving/served-model';
import { decodeImage, geometryOf } from '../src/serving/image';
import { inferenceThreads } from '../src/server/start';
import { lowerThreadPriority } from '../src/runtime/worker/thread-priority';
import { Sample, Stats, Target, closedLoop, openLoop, pct, send, summarise } from './load-clients';
import { arg, freePort } from './support/cli';
import { benchServiceEnv, serviceEnvFlag } from './support/service';

const ROOT = join(__dirname, '..');
const phaseS = Number(arg('phase-s', '10'));
const soakS = Number(arg('soak-s', '75'));
const sigtermRuns = Number(arg('sigterm-runs', '5'));
const threadsArg = Number(arg('threads', '0'));
const workers = Number(arg('workers', '1'));
const queueLimit = Number(arg('queue-limit', '256'));
const maxQueueWaitMs = Number(arg('max-queue-wait-ms', '250'));
const maxBatch = 32;
const clientNice = Number(arg('client-nice', '0'));
const skip = new Set(arg('skip', '').split(',').filter(Boolean));
const modelsDir = arg('models-dir', join(ROOT, 'models'));
const model = arg('model', 'fashion-mnist');
const threads = inferenceThreads({ threads: threadsArg, inferenceWorkers: workers });
const serviceEnv = serviceEnvFlag();

interface Service {
  url: string;
  /** the health listener's URL, when the service has one */
  healthUrl?: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

async function startService(env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: {
      ...benchServiceEnv({ port, modelsDir, model, threads, workers }),
      S2S_QUEUE_LIMIT: String(queueLimit),
      S2S_MAX_QUEUE_WAIT_MS: String(maxQueueWaitMs),
      S2S_MAX_BATCH: String(maxBatch),
      S2S_HEALTH_PORT: '0',
      ...serviceEnv,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const ready = await new Promise<{ url: string; health?: string }>((ok, fail) => {
    // one log line per request at info level, as in production; keep reading so the pipe never blocks
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"msg":"ready"')) ok(JSON.parse(line));
    });
    child.on('exit', (code) => fail(new Error(`service exited (${code}) before it was ready`)));
  });
  return { url: ready.url, healthUrl: ready.health, child, exited };
}

/**
 * An idle process that only watches its own event loop: its delay over the
 * same window says how much the machine starves any process (scheduling on a
 * shared machine), as opposed to what the service's own work costs its loop.
 */
const SENTINEL = `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 1 }); h.enable();
process.on('message', () => { process.send({ p99: Math.max(0, h.percentile(99) / 1e6 - 1), max: Math.max(0, h.max / 1e6 - 1) }); h.reset(); });`;
const sentinel = spawn(process.execPath, ['-e', SENTINEL], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
function sentinelWindow(): Promise<{ p99: number; max: number }> {
  return new Promise((ok) => {
    sentinel.once('message', (m) => ok(m as { p99: number; max: number }));
    sentinel.send('read');
  });
}

// forked now, at this process's priority, before --client-nice lowers the load generators
const prober = fork(join(__dirname, 'support', 'prober.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
function startProbes(targets: Array<{ key: string; url: string; fresh: boolean }>): () => Promise<Record<string, Sample[]>> {
  prober.send({ start: targets, intervalMs: 20 });
  return () =>
    new Promise((ok) => {
      prober.once('message', (m) => ok((m as { samples: Record<string, Sample[]> }).samples));
      prober.send({ stop: true });
    });
}

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}
const metric = (text: string, name: string, labels = '') =>
  [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))].filter((m) => (m[1] ?? '').includes(labels)).reduce((a, m) => a + Number(m[2]), 0);

/** Liveness probes, all at once: the traffic port and the health listener (when there is one), each kept alive and on new connections. */
const PROBES = [
  { key: 'live', port: 'traffic', fresh: false },
  { key: 'liveNew', port: 'traffic', fresh: true },
  { key: 'healthLive', port: 'health', fresh: false },
  { key: 'healthLiveNew', port: 'health', fresh: true },
] as const;
type ProbeKey = (typeof PROBES)[number]['key'];

/** Runs `load` while watching the event loop (reset by the first scrape) and, optionally, liveness probes. */
async function measured<T>(svc: Service, load: () => Promise<T>, withProbe = true) {
  const url = svc.url;
  const before = await scrape(url);
  await sentinelWindow();
  const targets = PROBES.flatMap(({ key, port, fresh }) => {
    const base = port === 'traffic' ? url : svc.healthUrl;
    return withProbe && base ? [{ key, url: base, fresh }] : [];
  });
  const stopProbes = startProbes(targets);
  // the load generator's own loop: when it lags, latencies it reports include its own delay, not the service's
  const clientLoop = monitorEventLoopDelay({ resolution: 10 });
  clientLoop.enable();
  const t0 = performance.now();
  const result = await load();
  const seconds = (performance.now() - t0) / 1000;
  clientLoop.disable();
  const after = await scrape(url);
  const idle = await sentinelWindow();
  const probed = await stopProbes();
  const live = Object.fromEntries(PROBES.map(({ key }) => [key, probed[key] ?? []])) as Record<ProbeKey, Sample[]>;
  const probeP99 = (k: ProbeKey) => pct(live[k].map((s) => s.ms), 99);
  const probeFailed = (k: ProbeKey) => live[k].filter((s) => s.status !== 200).length;
  const batches = metric(after, 's2s_batch_size_count') - metric(before, 's2s_batch_size_count');
  const images = metric(after, 's2s_batch_size_sum') - metric(before, 's2s_batch_size_sum');
  return {
    result,
    seconds,
    loopP99Ms: metric(after, 's2s_event_loop_delay_seconds', 'percentile="99"') * 1000,
    loopMaxMs: metric(after, 's2s_event_loop_delay_seconds', 'percentile="100"') * 1000,
    idleLoopP99Ms: idle.p99,
    clientLoopP99Ms: clientLoop.percentile(99) / 1e6,
    liveP99Ms: probeP99('live'),
    liveFailed: probeFailed('live'),
    probes: Object.fromEntries(PROBES.map(({ key }) => [key, { n: live[key].length, p50Ms: +pct(live[key].map((s) => s.ms), 50).toFixed(2), p99Ms: +probeP99(key).toFixed(2), maxMs: +Math.max(...live[key].map((s) => s.ms)).toFixed(1), failed: probeFailed(key) }])) as Record<ProbeKey, ProbeStats>,
    meanBatch: batches > 0 ? images / batches : 0,
    imagesPerS: images / seconds,
    rssMb: metric(after, 'process_resident_memory_bytes') / 2 ** 20,
  };
}

interface ProbeStats {
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  failed: number;
}

const f1 = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
/** The liveness A/B of one phase: the same probe on the traffic port and on the health listener, measured side by side. */
function fmtProbes(p: Record<ProbeKey, ProbeStats>): string {
  const one = (k: ProbeKey) => (p[k].n ? `p50/p99/max ${f1(p[k].p50Ms, 2)}/${f1(p[k].p99Ms, 2)}/${f1(p[k].maxMs, 1)} ms (${p[k].n} probes, ${p[k].failed} failed)` : '(no health listener)');
  const ratio = (a: ProbeKey, b: ProbeKey) => (p[b].n && p[b].p99Ms > 0 ? ` → traffic/health p99 ${f1(p[a].p99Ms / p[b].p99Ms, 1)}×` : '');
  return [
    `   liveness, kept-alive connection: traffic port ${one('live')}; health port ${one('healthLive')}${ratio('live', 'healthLive')}`,
    `   liveness, new connection per probe (kubelet): traffic port ${one('liveNew')}; health port ${one('healthLiveNew')}${ratio('liveNew', 'healthLiveNew')}`,
  ].join('\n');
}

const fmtStats = (s: Stats) =>
  `sent ${s.sent}; status ${JSON.stringify(s.byStatus)}; connection errors ${JSON.stringify(s.errors)}; 200 p50/p99/max ${f1(s.okP50)}/${f1(s.okP99)}/${f1(s.okMax)} ms; 503 p50/p99 ${f1(s.rejectP50, 2)}/${f1(s.rejectP99, 2)} ms; 503 with Retry-After ${f1(s.retryAfterShare * 100)} %`;

async function main() {
  const set = await loadModelSet(join(modelsDir, model));
  const geo = geometryOf(set.manifest.input);
  const raw = Buffer.alloc(geo.width * geo.height * geo.channels);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + (i >> 5) * 11) & 255;
  const png = await sharp(raw, { raw: { width: geo.width, height: geo.height, channels: geo.channels } }).png().toBuffer();
  const pixels = await decodeImage(png, geo, 1e8);
  const size = pixels.length;
  const lines: string[] = [];
  const say = (s: string) => {
    lines.push(s);
    console.log(s);
  };
  const result: Record<string, unknown> = { model, threads, workers, queueLimit, maxQueueWaitMs, maxBatch, phaseS, cores: cpus().length, allowedCores: allowedCores(), serviceEnv };

  say(`s2s load harness: model set '${model}' (${geo.channels}×${geo.height}×${geo.width}); ${workers} inference worker(s) × ${threads} ORT thread(s), no spinning; queue ${queueLimit} images, expected-wait budget ${maxQueueWaitMs || 'off'}${maxQueueWaitMs ? ' ms' : ''}, batches ≤ ${maxBatch}`);
  if (Object.keys(serviceEnv).length) say(`service environment: ${JSON.stringify(serviceEnv)}`);
  say(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (allowed ${allowedCores()}), load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);

  const svc = await startService();
  if (clientNice > 0) {
    // after the service started (a child takes its parent's priority): from here on the clients (and the
    // in-process baseline, which runs alone) run lower, as load from other machines would not compete at all
    const lowered = lowerThreadPriority(clientNice);
    say(`load generators lowered ${clientNice} nice steps: ${lowered.applied ? `now nice ${lowered.nice}` : lowered.reason}`);
    result.clientNice = clientNice;
  }
  const classify: Target = { url: svc.url, path: '/v1/classify', body: png, headers: { 'content-type': 'image/png' } };
  await closedLoop(classify, 32, 2); // warm-up

  // ---- 1. capacity at c=32, alternating with the in-process serving graph ----
  const session = await createSession(loadServingGraph(set), {
    provider: 'cpu',
    intraOpThreads: threads,
    allowSpinning: false,
  });
  const hasNoise = session.inputNames.includes('noise');
  const feeds = (n: number) => {
    const input = new Float32Array(n * size);
    for (let i = 0; i < n; i++) input.set(pixels, i * size);
    const dims = [n, geo.channels, geo.height, geo.width];
    return { input: new ort.Tensor('float32', input, dims), ...(hasNoise ? { noise: new ort.Tensor('float32', new Float32Array(n * size), dims) } : {}) };
  };
  const capacity: number[] = [];
  const inProcess: number[] = [];
  const batches: number[] = [];
  let c32: Awaited<ReturnType<typeof measured<Sample[]>>> | undefined;
  for (let round = 0; round < 2; round++) {
    const m = await measured(svc, () => closedLoop(classify, 32, phaseS / 2));
    const ok = m.result.filter((s) => s.status === 200).length;
    capacity.push(ok / m.seconds);
    batches.push(m.meanBatch);
    c32 = m;
    const b = Math.max(1, Math.round(m.meanBatch));
    const fb = feeds(b);
    let runs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < (phaseS / 2) * 1000) {
      await session.run(fb, ['probs', 'score']);
      runs++;
    }
    inProcess.push((runs * b) / ((performance.now() - t0) / 1000));
  }
  const cap = pct(capacity, 50);
  const ratio = capacity.reduce((a, x, i) => a + x / inProcess[i], 0) / capacity.length;
  const c32s = summarise(c32!.result, c32!.seconds);
  say(`\n1. capacity, concurrency 32 (2 × ${phaseS / 2} s): ${capacity.map((x) => f1(x, 0)).join(', ')} images/s (mean batch ${batches.map((x) => f1(x)).join(', ')}); ${fmtStats(c32s)}`);
  say(`   in-process serving graph at that batch size, same threads, no spinning: ${inProcess.map((x) => f1(x, 0)).join(', ')} images/s → ratio ${f1(ratio * 100)} % (goal ≥ 95 %)`);
  say(`   event-loop delay p99 ${f1(c32!.loopP99Ms, 2)} ms (max ${f1(c32!.loopMaxMs)}; an idle process on this machine: p99 ${f1(c32!.idleLoopP99Ms, 2)} ms), liveness p99 ${f1(c32!.liveP99Ms, 2)} ms`);
  say(fmtProbes(c32!.probes));
  Object.assign(result, { c32Probes: c32!.probes, c32HealthLiveP99Ms: c32!.probes.healthLive.p99Ms, c32HealthLiveNewP99Ms: c32!.probes.healthLiveNew.p99Ms, c32LiveNewP99Ms: c32!.probes.liveNew.p99Ms });
  Object.assign(result, { capacity: +cap.toFixed(1), inProcess: +pct(inProcess, 50).toFixed(1), throughputRatio: +ratio.toFixed(3), meanBatch: +pct(batches, 50).toFixed(2), c32LoopP99Ms: +c32!.loopP99Ms.toFixed(2), c32LiveP99Ms: +c32!.liveP99Ms.toFixed(2) });

  // ---- 2. one request at a time ----
  {
    const v2body = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, geo.channels, geo.height, geo.width], data: Array.from(pixels) }] }));
    const v2: Target = { url: svc.url, path: `/v2/models/${model}/infer`, body: v2body, headers: { 'content-type': 'application/json' } };
    const one = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const n = 300;
    for (let i = 0; i < 30; i++) await send(v2, one);
    const tensorMs: number[] = [];
    for (let i = 0; i < n; i++) tensorMs.push((await send(v2, one)).ms);
    const pngMs: number[] = [];
    for (let i = 0; i < n; i++) pngMs.push((await send(classify, one)).ms);
    one.destroy();
    const runMs: number[] = [];
    const fb1 = feeds(1);
    for (let i = 0; i < 30; i++) await session.run(fb1, ['probs', 'score']);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await session.run(fb1, ['probs', 'score']);
      runMs.push(performance.now() - t0);
    }
    const decodeMs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await decodeImage(png, geo, 1e8);
      decodeMs.push(performance.now() - t0);
    }
    const overhead = pct(tensorMs, 50) - pct(runMs, 50);
    say(`\n2. one request at a time (${n} each): raw tensor (V2 JSON) p50 ${f1(pct(tensorMs, 50), 2)} ms; in-process batch-1 run p50 ${f1(pct(runMs, 50), 2)} ms → overhead ${f1(overhead, 2)} ms (goal ≤ 1 ms)`);
    say(`   PNG request p50 ${f1(pct(pngMs, 50), 2)} ms; PNG decode alone p50 ${f1(pct(decodeMs, 50), 3)} ms`);
    Object.assign(result, { tensorP50Ms: +pct(tensorMs, 50).toFixed(3), batch1RunP50Ms: +pct(runMs, 50).toFixed(3), overheadP50Ms: +overhead.toFixed(3), pngP50Ms: +pct(pngMs, 50).toFixed(3), decodeP50Ms: +pct(decodeMs, 50).toFixed(3) });
  }
  await session.release();

  // ---- 3. 4× capacity ----
  const countBoundMs = ((queueLimit + maxBatch * workers) / cap) * 1000;
  const waitBoundMs = maxQueueWaitMs > 0 ? maxQueueWaitMs + (maxBatch / cap) * 1000 : Infinity;
  const boundMs = Math.min(countBoundMs, waitBoundMs);
  say(`\n3. overload; documented bound on accepted latency: the smaller of (queue ${queueLimit} + one batch ${maxBatch}) / capacity ${f1(cap, 0)} images/s = ${f1(countBoundMs, 0)} ms and wait budget ${maxQueueWaitMs || '(off)'} + one batch = ${f1(waitBoundMs, 0)} ms (+ decode)`);
  if (!skip.has('closed')) {
    const m = await measured(svc, () => closedLoop(classify, 1024, phaseS));
    const s = summarise(m.result, m.seconds);
    const goodput = (s.byStatus['200'] ?? 0) / m.seconds;
    say(`   closed loop, 1024 connections, ${phaseS} s: ${fmtStats(s)}`);
    say(`   goodput ${f1(goodput, 0)} images/s = ${f1((goodput / cap) * 100)} % of capacity (goal ≥ 90 %); accepted p99 ${f1(s.okP99, 0)} ms vs bound ${f1(boundMs, 0)} ms; event-loop delay p99 ${f1(m.loopP99Ms, 2)} ms (max ${f1(m.loopMaxMs)}; idle process ${f1(m.idleLoopP99Ms, 2)}); liveness p99 ${f1(m.liveP99Ms, 2)} ms, failed ${m.liveFailed}; load generator's own event-loop delay p99 ${f1(m.clientLoopP99Ms, 1)} ms`);
    say(fmtProbes(m.probes));
    result.closed = { ...s, probes: m.probes, healthLiveP99Ms: m.probes.healthLive.p99Ms, healthLiveNewP99Ms: m.probes.healthLiveNew.p99Ms, liveNewP99Ms: m.probes.liveNew.p99Ms, goodput: +goodput.toFixed(1), goodputShare: +(goodput / cap).toFixed(3), loopP99Ms: +m.loopP99Ms.toFixed(2), idleLoopP99Ms: +m.idleLoopP99Ms.toFixed(2), liveP99Ms: +m.liveP99Ms.toFixed(2), clientLoopP99Ms: +m.clientLoopP99Ms.toFixed(1), boundMs: +boundMs.toFixed(0) };
  }
  if (!skip.has('open')) {
    const rate = Math.round(4 * cap);
    const m = await measured(svc, () => openLoop(classify, rate, phaseS));
    const s = summarise(m.result.samples, m.seconds);
    const goodput = (s.byStatus['200'] ?? 0) / m.seconds;
    say(`   open loop, ${rate} requests/s on new connections, ${phaseS} s (${m.result.notSent} arrivals not sent: client in-flight cap): ${fmtStats(s)}`);
    say(`   goodput ${f1(goodput, 0)} images/s = ${f1((goodput / cap) * 100)} % of capacity; accepted p99 ${f1(s.okP99, 0)} ms vs bound ${f1(boundMs, 0)} ms; event-loop delay p99 ${f1(m.loopP99Ms, 2)} ms (max ${f1(m.loopMaxMs)}; idle process ${f1(m.idleLoopP99Ms, 2)}); liveness p99 ${f1(m.liveP99Ms, 2)} ms, failed ${m.liveFailed}; load generator's own event-loop delay p99 ${f1(m.clientLoopP99Ms, 1)} ms`);
    say(fmtProbes(m.probes));
    result.open = { probes: m.probes, healthLiveP99Ms: m.probes.healthLive.p99Ms, healthLiveNewP99Ms: m.probes.healthLiveNew.p99Ms, liveNewP99Ms: m.probes.liveNew.p99Ms, rate, notSent: m.result.notSent, ...s, goodput: +goodput.toFixed(1), goodputShare: +(goodput / cap).toFixed(3), loopP99Ms: +m.loopP99Ms.toFixed(2), idleLoopP99Ms: +m.idleLoopP99Ms.toFixed(2), liveP99Ms: +m.liveP99Ms.toFixed(2), clientLoopP99Ms: +m.clientLoopP99Ms.toFixed(1) };
  }

  // ---- 4. hostile bodies beside a legitimate client ----
  if (!skip.has('hostile')) {
    const legit = async (seconds: number) => {
      const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
      const out: Sample[] = [];
      const until = performance.now() + seconds * 1000;
      while (performance.now() < until) out.push(await send(classify, agent));
      agent.destroy();
      return out;
    };
    const ten = 10 << 20;
    const hostile: Array<[string, Target]> = [
      ['nested JSON /v1', { url: svc.url, path: '/v1/classify', body: Buffer.concat([Buffer.from('{"images":'), Buffer.alloc(ten - 20, '[')]), headers: { 'content-type': 'application/json' } }],
      ['nested JSON V2', { url: svc.url, path: `/v2/models/${model}/infer`, body: Buffer.concat([Buffer.from('{"inputs":'), Buffer.alloc(ten - 20, '[')]), headers: { 'content-type': 'application/json' } }],
      ['10 MB array', { url: svc.url, path: '/v1/classify', body: Buffer.from(`{"images":[${'0,'.repeat((ten - 20) / 2)}0]}`), headers: { 'content-type': 'application/json' } }],
      ['GIF pixel bomb', { url: svc.url, path: '/v1/classify', body: readFileSync(join(ROOT, 'test', 'fixtures', 'malformed', 'pixel-bomb.gif')), headers: { 'content-type': 'image/gif' } }],
    ];
    const quiet = await legit(phaseS / 2);
    let stop = false;
    const hostileSamples: Record<string, Sample[]> = {};
    const m = await measured(
      svc,
      async () => {
        const attackers = hostile.map(async ([name, t]) => {
          hostileSamples[name] = [];
          while (!stop) hostileSamples[name].push(await send(t, false));
        });
        const out = await legit(phaseS / 2);
        stop = true;
        await Promise.all(attackers);
        return out;
      },
      false,
    );
    const during = m.result;
    const q = summarise(quiet, phaseS / 2);
    const d = summarise(during, phaseS / 2);
    say(`\n4. hostile bodies (each in a loop on new connections) beside one legitimate client, ${phaseS / 2} s without then ${phaseS / 2} s with:`);
    for (const [name] of hostile) {
      const hs = summarise(hostileSamples[name], phaseS / 2);
      say(`   ${name}: ${hs.sent} sent, status ${JSON.stringify(hs.byStatus)}, errors ${JSON.stringify(hs.errors)}, answered p50 ${f1(pct(hostileSamples[name].map((s) => s.ms), 50), 1)} ms`);
    }
    say(`   legitimate client without: ${fmtStats(q)}`);
    say(`   legitimate client with:    ${fmtStats(d)}`);
    say(`   service event-loop delay p99 while attacked ${f1(m.loopP99Ms, 2)} ms (max ${f1(m.loopMaxMs)}; an idle process on this machine: p99 ${f1(m.idleLoopP99Ms, 2)} ms)`);
    say(`   → 503s during: ${d.byStatus['503'] ?? 0}; p99 extra ${f1(d.okP99 - q.okP99, 2)} ms; slowest request ${f1(d.okMax - q.okP50, 1)} ms over the quiet median (goal: no 503, ≤ 50 ms extra)`);
    result.hostile = { loopP99Ms: +m.loopP99Ms.toFixed(2), idleLoopP99Ms: +m.idleLoopP99Ms.toFixed(2), loopMaxMs: +m.loopMaxMs.toFixed(1), quiet: q, during: d, p99ExtraMs: +(d.okP99 - q.okP99).toFixed(2), maxExtraMs: +(d.okMax - q.okP50).toFixed(2), attackers: Object.fromEntries(Object.entries(hostileSamples).map(([k, v]) => [k, summarise(v, phaseS / 2).byStatus])) };
  }

  // ---- 6. soak (on the same service, before it is stopped) ----
  if (!skip.has('soak')) {
    const rss: Array<[number, number]> = [];
    const rssNow = async () => metric(await scrape(svc.url), 'process_resident_memory_bytes') / 2 ** 20;
    rss.push([0, await rssNow()]);
    const t0 = performance.now();
    let done = false;
    const sampler = (async () => {
      let marked60 = false;
      while (!done) {
        await new Promise((r) => setTimeout(r, 1000));
        const t = (performance.now() - t0) / 1000;
        if (!marked60 && t >= 60) {
          marked60 = true;
          rss.push([t, await rssNow()]);
        }
      }
    })();
    const samples = await closedLoop(classify, 32, soakS);
    done = true;
    await sampler;
    rss.push([(performance.now() - t0) / 1000, await rssNow()]);
    const s = summarise(samples, soakS);
    say(`\n6. soak, concurrency 32 for ${soakS} s: ${fmtStats(s)}`);
    say(`   RSS ${rss.map(([t, mb]) => `${f1(t, 0)} s: ${f1(mb, 0)} MB`).join('; ')}`);
    result.soak = { seconds: soakS, rssMb: rss.map(([t, mb]) => [+t.toFixed(0), +mb.toFixed(1)]), byStatus: s.byStatus, errors: s.errors };
  }
  svc.child.kill('SIGTERM');
  await svc.exited;

  // ---- 5. SIGTERM under load, fresh services ----
  if (!skip.has('sigterm')) {
    const drainMs = 2000;
    const lbLagMs = 500;
    const runs: Array<{ completed: number; failed: number; errors: Record<string, number>; exit: number | null }> = [];
    for (let r = 0; r < sigtermRuns; r++) {
      const s = await startService({ S2S_DRAIN_MS: String(drainMs) });
      const t: Target = { ...classify, url: s.url };
      // The "load balancer": polls readiness every lbLagMs; once it has seen 503, no new request starts.
      let removed = false;
      const poller = (async () => {
        while (!removed) {
          await new Promise((res) => setTimeout(res, lbLagMs));
          const ready = await send({ url: s.url, path: '/v2/health/ready' }, false);
          if (ready.status !== 200) removed = true;
        }
      })();
      const load = closedLoop(t, 32, 60, () => removed);
      await new Promise((res) => setTimeout(res, 1500));
      s.child.kill('SIGTERM');
      const samples = await load;
      await poller;
      const exit = await s.exited;
      const st = summarise(samples, 0);
      const failed = samples.filter((x) => x.error || x.status !== 200).length;
      runs.push({ completed: st.byStatus['200'] ?? 0, failed, errors: st.errors, exit });
    }
    say(`\n5. SIGTERM under load (32 keep-alive clients; drain ${drainMs} ms; the clients' "load balancer" polls readiness every ${lbLagMs} ms), ${sigtermRuns} runs on fresh services:`);
    for (const [i, r] of runs.entries()) say(`   run ${i + 1}: completed ${r.completed}, failed ${r.failed} ${JSON.stringify(r.errors)}, exit code ${r.exit}`);
    say(`   → failed in total ${runs.reduce((a, r) => a + r.failed, 0)} of ${runs.reduce((a, r) => a + r.completed + r.failed, 0)} (goal 0)`);
    result.sigterm = runs;
  }

  say(`\nload average at end ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores${loadavg()[0] > cpus().length ? ' — other work shared the machine; figures are lower bounds on this hardware' : ''}`);
  console.log(JSON.stringify(result));
  sentinel.kill();
  prober.kill();
}

main().catch((e) => {
  console.error(e);
  sentinel.kill();
  prober.kill();
  process.exit(1);
});
