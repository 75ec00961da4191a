/**
 * Service benchmark (not a test). In one run, on this machine, in rounds
 * that alternate so both sides see the same background load:
 *   1. the live service (`s2s serve`, its own process, loopback) under
 *      autocannon at concurrency 32: images/s, latency, and the mean batch
 *      size the dynamic batcher formed (from /metrics);
 *   2. the same serving graph, composed from the same model set, called
 *      directly through onnxruntime-node in this process at that batch size;
 *   3. one request at a time, then one in-process run at batch 1 at a time;
 * then the goals of issue 5 as medians over the rounds: service throughput
 * ≥ 85 % of in-process, single-request p50 within 1 ms of one in-process run.
 * autocannon runs on the same machine as the service and takes CPU from it.
 *
 *   npm run bench:server -- [--duration 15] [--rounds 3] [--connections 32] [--requests 600] [--threads 0] [--models-dir DIR --model NAME]
 *
 * Without a model set it benchmarks the default set's architectures
 * (resnet-small classifier, segnet-small S2SNet, 28×28 grey) with seeded
 * random weights: speed does not depend on what the weights learnt.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { Pool } from 'undici';
import { buildArchitecture } from '../src/architectures/architectures';
import { loadModelSet } from '../src/models/loader';
import type { Manifest } from '../src/models/manifest';
import { loadModel, saveModel } from '../src/onnx/io';
import { createSession } from '../src/runtime/session';
import { buildServingGraph } from '../src/serving/graph';
import { decodeImage, geometryOf } from '../src/serving/image';
import { inferenceThreads } from '../src/server/start';
import { arg, freePort } from './support/cli';

/** The part of autocannon's result this bench reads (the package ships no types). */
interface LoadResult {
  requests: { total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
const autocannon: (opts: { url: string; method: string; headers: Record<string, string>; body: Buffer; connections: number; duration: number }) => Promise<LoadResult> = require('autocannon');

const ROOT = join(__dirname, '..');
const duration = Number(arg('duration', '15'));
const connections = Number(arg('connections', '32'));
const threads = arg('threads', '0');
const singleRequests = Number(arg('requests', '600'));
const rounds = Number(arg('rounds', '3'));

const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** The default set's architectures with seeded random weights, written as a model set. */
function benchModelSet(): { modelsDir: string; model: string } {
  const modelsDir = mkdtempSync(join(tmpdir(), 's2s-bench-'));
  const dir = join(modelsDir, 'bench');
  mkdirSync(dir);
  saveModel(buildArchitecture('resnet-small', { seed: 1 }), join(dir, 'classifier.onnx'));
  saveModel(buildArchitecture('segnet-small', { seed: 2 }), join(dir, 's2snet.onnx'));
  const manifest: Manifest = {
    schemaVersion: 1,
    name: 'bench',
    version: 'bench',
    description: 'resnet-small + segnet-small, random weights (benchmark only)',
    input: { channels: 1, height: 28, width: 28, layout: 'NCHW', range: [0, 1], mean: [0.286], std: [0.353] },
    labels: Array.from({ length: 10 }, (_, i) => `class ${i}`),
    files: {
      classifier: { path: 'classifier.onnx', sha256: sha256(join(dir, 'classifier.onnx')) },
      s2snet: { path: 's2snet.onnx', sha256: sha256(join(dir, 's2snet.onnx')) },
    },
    defence: { chain: [{ stage: 'noise' }, { stage: 's2snet' }] },
    noise: { kind: 'gaussian', sigma: 0, maxSigma: 0.1 },
    detection: { threshold: 1 },
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return { modelsDir, model: 'bench' };
}

async function startService(modelsDir: string, model: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), S2S_MODELS_DIR: modelsDir, S2S_MODEL: model, S2S_THREADS: threads, S2S_DRAIN_MS: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((ok, fail) => {
    // The service logs one line per request at info level, as in production; keep reading so it never blocks.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"msg":"ready"')) ok(JSON.parse(line).url);
    });
    child.on('exit', (code) => fail(new Error(`service exited (${code}) before it was ready`)));
  });
  return { url, child };
}

async function batchStats(url: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  return { sum: read('s2s_batch_size_sum'), count: read('s2s_batch_size_count') };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function main() {
  const given = arg('models-dir', '');
  const defaultSet = join(ROOT, 'models', 'fashion-mnist');
  const { modelsDir, model } = given
    ? { modelsDir: given, model: arg('model', 'fashion-mnist') }
    : existsSync(join(defaultSet, 'manifest.json'))
      ? { modelsDir: join(ROOT, 'models'), model: 'fashion-mnist' }
      : benchModelSet();
  const set = await loadModelSet(join(modelsDir, model));
  const geo = geometryOf(set.manifest.input);
  const raw = Buffer.alloc(geo.width * geo.height * geo.channels);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + (i >> 5) * 11) & 255;
  const png = await sharp(raw, { raw: { width: geo.width, height: geo.height, channels: geo.channels } }).png().toBuffer();

  console.log(`s2s service benchmark: model set '${model}' (${set.manifest.description ?? set.manifest.version}), ${geo.channels}×${geo.height}×${geo.width}`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; S2S_THREADS=${threads}`);

  // The service (its own process) and the in-process session live side by side; measurement windows
  // alternate between them, so both see the same background load on a shared machine.
  const { url, child } = await startService(modelsDir, model);
  const graphs = { classifier: loadModel(set.paths.classifier), s2snet: loadModel(set.paths.s2snet) };
  // The service's own settings: its thread count (0 resolved as the service resolves it) and no spinning.
  const session = await createSession(buildServingGraph(set.manifest, graphs), { intraOpThreads: inferenceThreads({ threads: Number(threads), inferenceWorkers: 1 }), allowSpinning: false });
  const pixels = await decodeImage(png, geo, 1e8);
  const size = pixels.length;
  const feeds = (n: number) => {
    const input = new Float32Array(n * size);
    for (let i = 0; i < n; i++) input.set(pixels, i * size);
    const dims = [n, geo.channels, geo.height, geo.width];
    return { input: new ort.Tensor('float32', input, dims), noise: new ort.Tensor('float32', new Float32Array(n * size), dims) };
  };
  const target = { url: `${url}/v1/classify`, method: 'POST' as const, headers: { 'content-type': 'image/png' }, body: png };
  const pool = new Pool(url, { connections: 1 });
  const oneRequest = async () => {
    const t0 = performance.now();
    const r = await pool.request({ path: '/v1/classify', method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) throw new Error(`single request answered ${r.statusCode}`);
    return performance.now() - t0;
  };
  const f1 = feeds(1);
  const oneRun = async () => {
    const t0 = performance.now();
    await session.run(f1, ['probs', 'score']);
    return performance.now() - t0;
  };
  await autocannon({ ...target, connections, duration: 2 }); // warm-up
  for (let i = 0; i < 20; i++) await oneRequest();
  for (let i = 0; i < 20; i++) await oneRun();

  const window = duration / rounds;
  const service: number[] = [];
  const inProcess: number[] = [];
  const batches: number[] = [];
  const p50s: Array<{ service: number; graph: number }> = [];
  let failures = 0;
  let latency = { p50: 0, p99: 0 };
  for (let r = 0; r < rounds; r++) {
    // 1. the live service under load
    const before = await batchStats(url);
    const load = await autocannon({ ...target, connections, duration: window });
    const after = await batchStats(url);
    const meanBatch = (after.sum - before.sum) / Math.max(1, after.count - before.count);
    service.push(load.requests.total / window);
    batches.push(meanBatch);
    failures += load.non2xx + load.errors + load.timeouts;
    if (r === Math.floor(rounds / 2)) latency = load.latency;
    // 2. the same serving graph in process, at the batch size the service formed
    const batch = Math.max(1, Math.round(meanBatch));
    const fb = feeds(batch);
    let runs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < window * 1000) {
      await session.run(fb, ['probs', 'score']);
      runs++;
    }
    inProcess.push((runs * batch) / ((performance.now() - t0) / 1000));
    // 3. one request at a time, then one run at batch 1 at a time (blocks, not alternating
    //    calls: ORT's worker threads spin after a run and would slow the other process's next one)
    const a: number[] = [];
    const g: number[] = [];
    for (let i = 0; i < singleRequests / rounds; i++) a.push(await oneRequest());
    for (let i = 0; i < singleRequests / rounds; i++) g.push(await oneRun());
    p50s.push({ service: pct(a, 50), graph: pct(g, 50) });
  }
  await pool.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  await session.release();

  // ---- report: medians over the rounds ----
  const med = (xs: number[]) => pct(xs, 50);
  const ratios = service.map((x, i) => x / inProcess[i]);
  const gaps = p50s.map((p) => p.service - p.graph);
  const rows: Array<[string, string]> = [
    [`service, ${connections} connections (${rounds} × ${window} s)`, `${med(service).toFixed(0)} images/s (p50 ${latency.p50} ms, p99 ${latency.p99} ms, failures ${failures}, mean batch ${med(batches).toFixed(1)})`],
    [`in-process serving graph, same batch size`, `${med(inProcess).toFixed(0)} images/s`],
    ['throughput ratio (goal ≥ 85 %)', `${(med(ratios) * 100).toFixed(1)} % (rounds: ${ratios.map((x) => (x * 100).toFixed(0)).join(', ')})`],
    ['service, one request at a time', `p50 ${med(p50s.map((p) => p.service)).toFixed(2)} ms`],
    ['in-process, one run at batch 1', `p50 ${med(p50s.map((p) => p.graph)).toFixed(2)} ms`],
    ['single-request p50 overhead (goal ≤ 1 ms)', `${med(gaps).toFixed(2)} ms (rounds: ${gaps.map((x) => x.toFixed(2)).join(', ')})`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  const [load1] = loadavg();
  if (load1 > cpus().length) console.log(`  note: load average ${load1.toFixed(1)} on ${cpus().length} cores during the run; other work shared the machine`);
  console.log(
    JSON.stringify({
      model,
      connections,
      rounds,
      windowS: window,
      threads: Number(threads),
      serviceImagesPerS: +med(service).toFixed(1),
      inProcessImagesPerS: +med(inProcess).toFixed(1),
      throughputRatio: +med(ratios).toFixed(3),
      meanBatch: +med(batches).toFixed(2),
      serviceP50Ms: latency.p50,
      serviceP99Ms: latency.p99,
      failures,
      singleP50Ms: +med(p50s.map((p) => p.service)).toFixed(3),
      inProcessBatch1P50Ms: +med(p50s.map((p) => p.graph)).toFixed(3),
      p50OverheadMs: +med(gaps).toFixed(3),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
