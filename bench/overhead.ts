/**
 * Single-request overhead (not a test: it measures time). One request at a
 * time against a live `s2s serve` on loopback, next to the same serving
 * graph run in this process at batch 1 with the service's own thread
 * settings (no spinning). Rounds alternate between the sides so both see
 * the same background load on a shared machine; each round measures, in
 * turn:
 *   - in-process: one `session.run` on this thread (the baseline);
 *   - in-process through an inference worker (the same hop the service
 *     makes: postMessage, run, transfer back), to tell the hop's cost apart;
 *   - a raw-tensor request, V2 binary (`Inference-Header-Content-Length`);
 *   - a raw-tensor request, V2 JSON (784 numbers to parse);
 *   - a PNG on /v1/classify, and PNG decode alone;
 *   - GET /v2/health/live: what any request costs over HTTP on this machine.
 * Prints p50s per round, then medians over the rounds: the overhead (request
 * p50 − baseline p50) and the ratio (request p50 ÷ baseline p50).
 *
 *   npx tsx bench/overhead.ts [--rounds 5] [--requests 200] [--threads 0] [--models-dir DIR --model NAME] [--env K=V,K=V]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadModelSet } from '../src/models/loader';
import { createSession } from '../src/runtime/session';
import { InferencePool } from '../src/runtime/worker/inference-pool';
import { loadServingGraph } from '../src/serving/served-model';
import { decodeImage, geometryOf } from '../src/serving/image';
import { inferenceThreads } from '../src/server/start';
import { Target, pct, send } from './load-clients';
import { arg, freePort } from './support/cli';
import { benchServiceEnv, untilReady } from './support/service';

const ROOT = join(__dirname, '..');
const rounds = Number(arg('rounds', '5'));
const perRound = Number(arg('requests', '200'));
const threads = inferenceThreads({ threads: Number(arg('threads', '0')), inferenceWorkers: 1 });
const modelsDir = arg('models-dir', join(ROOT, 'models'));
const model = arg('model', 'fashion-mnist');
/**
 * Services to compare, each started with its own extra environment and,
 * after `@`, from another checkout of the project (a commit before a change):
 * `--variants 'log-warn:LOG_LEVEL=warn;before@/tmp/old-checkout:'`. The
 * service from this checkout with no extra environment is always first, as
 * `service`.
 */
const variants: Array<{ name: string; env: Record<string, string>; root: string }> = [
  { name: 'service', env: {}, root: ROOT },
  ...arg('variants', '')
    .split(';')
    .filter(Boolean)
    .map((v) => {
      const [label, list = ''] = v.split(':');
      const [name, root = ROOT] = label.split('@');
      const env = Object.fromEntries(list.split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      return { name, env, root };
    }),
];

async function startService(env: Record<string, string>, root: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: root,
    env: { ...benchServiceEnv({ port, modelsDir, model, threads, workers: 1 }), ...env },
    // the request log (one line per request at info level, as in production) is read and dropped, so the pipe never blocks
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  await untilReady(url, child);
  return { url, child };
}

async function timeEach(n: number, one: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await one();
    ms.push(performance.now() - t0);
  }
  return ms;
}

async function main() {
  const set = await loadModelSet(join(modelsDir, model));
  const geo = geometryOf(set.manifest.input);
  const raw = Buffer.alloc(geo.width * geo.height * geo.channels);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + (i >> 5) * 11) & 255;
  const png = await sharp(raw, { raw: { width: geo.width, height: geo.height, channels: geo.channels } }).png().toBuffer();
  const pixels = await decodeImage(png, geo, 1e8);
  const size = pixels.length;
  const dims = [1, geo.channels, geo.height, geo.width];

  console.log(`s2s single-request overhead: model set '${model}' (${geo.channels}×${geo.height}×${geo.width}); ${threads} ORT thread(s), no spinning, on both sides`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}${variants.length > 1 ? `; variants ${variants.map((v) => `${v.name} ${JSON.stringify(v.env)}${v.root === ROOT ? '' : ` from ${v.root}`}`).join(', ')}` : ''}`);

  const services = [];
  for (const v of variants) services.push({ ...v, ...(await startService(v.env, v.root)) });
  const graph = loadServingGraph(set);
  const sessionOptions = { provider: 'cpu' as const, intraOpThreads: threads, allowSpinning: false };
  const session = await createSession(graph, sessionOptions);
  const pool = new InferencePool({ workers: 1 });
  const pooled = await pool.load('serving', graph, sessionOptions);
  const hasNoise = session.inputNames.includes('noise');
  const feeds = () => ({
    input: new ort.Tensor('float32', pixels.slice(), dims),
    ...(hasNoise ? { noise: new ort.Tensor('float32', new Float32Array(size), dims) } : {}),
  });

  // one keep-alive connection per service
  const agents = new Map<string, Agent>();
  const request = async (t: Target) => {
    if (!agents.has(t.url)) agents.set(t.url, new Agent({ keepAlive: true, maxSockets: 1 }));
    const s = await send(t, agents.get(t.url)!);
    if (s.status !== 200) throw new Error(`${t.path} answered ${s.status ?? s.error}`);
  };
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: dims, parameters: { binary_data_size: size * 4 } }] }));
  const binaryBody = Buffer.concat([header, Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)]);
  const jsonBody = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: dims, data: Array.from(pixels) }] }));
  const infer = `/v2/models/${model}/infer`;

  const sides: Array<[string, () => Promise<unknown>]> = [
    ['in-process run (baseline)', () => session.run(feeds(), ['probs', 'score'])],
    ['in-process via inference worker', () => pooled.run(feeds(), ['probs', 'score'])],
  ];
  for (const { name, url } of services) {
    const tag = services.length > 1 ? ` [${name}]` : '';
    sides.push(
      [`request, V2 binary tensor${tag}`, () => request({ url, path: infer, body: binaryBody, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } })],
      [`request, V2 JSON tensor${tag}`, () => request({ url, path: infer, body: jsonBody, headers: { 'content-type': 'application/json' } })],
      [`request, PNG /v1/classify${tag}`, () => request({ url, path: '/v1/classify', body: png, headers: { 'content-type': 'image/png' } })],
      [`request, GET liveness (HTTP floor)${tag}`, () => request({ url, path: '/v2/health/live' })],
    );
  }
  sides.push(['PNG decode alone', () => decodeImage(png, geo, 1e8)]);
  for (const [, one] of sides) await timeEach(50, one); // warm-up: JIT, ORT arenas, the keep-alive connection

  const p50: number[][] = sides.map(() => []);
  for (let r = 0; r < rounds; r++) {
    // blocks, not one call of each in turn: a side's threads finishing their last run must not slow the next
    // side's first; every other round in reverse order, so no side always follows the same one
    const order = sides.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) p50[i][r] = pct(await timeEach(perRound, sides[i][1]), 50);
    console.log(`  round ${r + 1}: ${sides.map(([name], i) => `${name.split(' (')[0]} ${p50[i][r].toFixed(3)}`).join('; ')} ms`);
  }
  for (const a of agents.values()) a.destroy();
  for (const svc of services) svc.child.kill('SIGTERM');
  await pool.close();
  await session.release();

  const med = (xs: number[]) => pct(xs, 50);
  const base = p50[0];
  console.log(`\np50 over ${rounds} rounds × ${perRound} (median of the rounds' p50s; overhead and ratio per round against that round's baseline, then the median):`);
  const result: Record<string, unknown> = { model, threads, rounds, perRound, loadAverage: loadavg()[0], variants };
  for (const [i, [name]] of sides.entries()) {
    const over = p50[i].map((x, r) => x - base[r]);
    const ratio = p50[i].map((x, r) => x / base[r]);
    const tail = i === 0 || name.startsWith('PNG decode') ? '' : `  overhead ${med(over).toFixed(3)} ms (rounds ${over.map((x) => x.toFixed(2)).join(', ')}), ratio ${med(ratio).toFixed(2)}`;
    console.log(`  ${name.padEnd(Math.max(...sides.map(([n]) => n.length)))} ${med(p50[i]).toFixed(3)} ms${tail}`);
    result[name] = { p50Ms: +med(p50[i]).toFixed(3), overheadMs: +med(over).toFixed(3), ratio: +med(ratio).toFixed(3) };
  }
  console.log(`  goal: raw-tensor request overhead ≤ 1 ms. Load average at end ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores`);
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
