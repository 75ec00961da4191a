/**
 * Service benchmark (not a test). In one run, on this machine:
 *   1. the live service (`s2s serve`, its own process, loopback) under
 *      autocannon at concurrency 32: images/s, latency, the mean batch size
 *      the dynamic batcher formed (from /metrics);
 *   2. single-request latency: one request at a time, p50/p90;
 *   3. in-process, after the service has stopped: the same serving graph,
 *      composed from the same model set, called directly through
 *      onnxruntime-node at the batch size the service formed, and one run at
 *      batch 1;
 * then the ratios the issue sets as goals: service throughput ≥ 85 % of
 * in-process, single-request p50 within 1 ms of one in-process run.
 *
 *   npm run bench:server -- [--duration 10] [--connections 32] [--models-dir DIR --model NAME] [--threads 0]
 *
 * Without a model set it benchmarks the default set's architectures
 * (resnet-small classifier, segnet-small S2SNet, 28×28 grey) with seeded
 * random weights: speed does not depend on what the weights learnt.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
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
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const duration = Number(arg('duration', '10'));
const connections = Number(arg('connections', '32'));
const threads = arg('threads', '0');
const singleRequests = Number(arg('requests', '400'));

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

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
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

  // ---- 1. live service under load ----
  const { url, child } = await startService(modelsDir, model);
  const target = { url: `${url}/v1/classify`, method: 'POST' as const, headers: { 'content-type': 'image/png' }, body: png };
  await autocannon({ ...target, connections, duration: 2 }); // warm-up
  const before = await batchStats(url);
  const load = await autocannon({ ...target, connections, duration });
  const after = await batchStats(url);
  const meanBatch = (after.sum - before.sum) / Math.max(1, after.count - before.count);
  const served = load.requests.total / duration;
  const failures = load.non2xx + load.errors + load.timeouts;

  // ---- 2. one request at a time ----
  const pool = new Pool(url, { connections: 1 });
  const single: number[] = [];
  for (let i = 0; i < singleRequests + 20; i++) {
    const t0 = performance.now();
    const r = await pool.request({ path: '/v1/classify', method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) throw new Error(`single request answered ${r.statusCode}`);
    if (i >= 20) single.push(performance.now() - t0);
  }
  await pool.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));

  // ---- 3. the same serving graph, in process ----
  const graphs = { classifier: loadModel(set.paths.classifier), s2snet: loadModel(set.paths.s2snet) };
  const session = await createSession(buildServingGraph(set.manifest, graphs), { intraOpThreads: Number(threads) });
  const pixels = await decodeImage(png, geo, 1e8);
  const size = pixels.length;
  const feeds = (n: number) => {
    const input = new Float32Array(n * size);
    for (let i = 0; i < n; i++) input.set(pixels, i * size);
    const dims = [n, geo.channels, geo.height, geo.width];
    return { input: new ort.Tensor('float32', input, dims), noise: new ort.Tensor('float32', new Float32Array(n * size), dims) };
  };
  const batch = Math.max(1, Math.round(meanBatch));
  const fb = feeds(batch);
  for (let i = 0; i < 20; i++) await session.run(fb, ['probs', 'score']);
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < duration * 1000) {
    await session.run(fb, ['probs', 'score']);
    runs++;
  }
  const inProcess = (runs * batch) / ((performance.now() - t0) / 1000);
  const f1 = feeds(1);
  const one: number[] = [];
  for (let i = 0; i < singleRequests + 20; i++) {
    const s = performance.now();
    await session.run(f1, ['probs', 'score']);
    if (i >= 20) one.push(performance.now() - s);
  }
  await session.release();

  // ---- report ----
  const ratio = served / inProcess;
  const p50gap = pct(single, 50) - pct(one, 50);
  const rows: Array<[string, string]> = [
    [`service, ${connections} connections, ${duration} s`, `${served.toFixed(0)} images/s (p50 ${load.latency.p50} ms, p99 ${load.latency.p99} ms, failures ${failures}, mean batch ${meanBatch.toFixed(1)})`],
    [`in-process serving graph, batch ${batch}`, `${inProcess.toFixed(0)} images/s`],
    ['throughput ratio (goal ≥ 85 %)', `${(ratio * 100).toFixed(1)} %`],
    ['service, one request at a time', `p50 ${pct(single, 50).toFixed(2)} ms, p90 ${pct(single, 90).toFixed(2)} ms`],
    ['in-process, one run at batch 1', `p50 ${pct(one, 50).toFixed(2)} ms, p90 ${pct(one, 90).toFixed(2)} ms`],
    ['single-request p50 overhead (goal ≤ 1 ms)', `${p50gap.toFixed(2)} ms`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  console.log(
    JSON.stringify({
      model,
      connections,
      durationS: duration,
      serviceImagesPerS: +served.toFixed(1),
      serviceP50Ms: load.latency.p50,
      serviceP99Ms: load.latency.p99,
      failures,
      meanBatch: +meanBatch.toFixed(2),
      inProcessImagesPerS: +inProcess.toFixed(1),
      throughputRatio: +ratio.toFixed(3),
      singleP50Ms: +pct(single, 50).toFixed(3),
      inProcessBatch1P50Ms: +pct(one, 50).toFixed(3),
      p50OverheadMs: +p50gap.toFixed(3),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
