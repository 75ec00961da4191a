/**
 * gRPC benchmark (not a test). In one run, on this machine, against the live
 * service (`s2s serve` in its own process, loopback, gRPC on) and the same
 * serving graph in this process with the service's own thread settings
 * (intra-op threads from --threads, no spinning):
 *   1. single raw-tensor requests one at a time: gRPC ModelInfer
 *      (raw_input_contents, FP32 [1,1,28,28]) and HTTP V2 binary, against one
 *      in-process session run at batch 1 → the p50 overhead of each;
 *   2. throughput at concurrency 32: gRPC (32 calls in flight on one HTTP/2
 *      channel) and HTTP V2 binary (32 keep-alive connections), in
 *      alternating windows so both see the same background load → the ratio.
 * Goals (issue 12): gRPC p50 overhead ≤ 0.5 ms; gRPC throughput within 5 % of
 * HTTP binary's. The clients run in this process, on the same machine.
 *
 *   npx tsx bench/grpc.ts [--rounds 3] [--window 5] [--requests 300] [--connections 32] [--threads 1]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as ort from 'onnxruntime-node';
import { Pool } from 'undici';
import { loadModelSet } from '../src/models/loader';
import { loadModel } from '../src/onnx/io';
import { createSession } from '../src/runtime/session';
import { buildServingGraph } from '../src/serving/graph';
import { geometryOf } from '../src/serving/image';
import { arg } from './support/cli';

const ROOT = join(__dirname, '..');
const rounds = Number(arg('rounds', '3'));
const windowS = Number(arg('window', '5'));
const singles = Number(arg('requests', '300'));
const connections = Number(arg('connections', '32'));
const threads = arg('threads', '1');
const MODEL = 'fashion-mnist';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const med = (xs: number[]) => pct(xs, 50);

async function startService(): Promise<{ url: string; grpcAddress: string; child: ChildProcess }> {
  // info level: the "ready" line carries the addresses; the per-request lines are read and dropped, as in bench/server.ts
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', S2S_GRPC_PORT: '0', S2S_MODEL: MODEL, S2S_THREADS: threads, S2S_DRAIN_MS: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((ok, fail) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"msg":"ready"')) {
        const o = JSON.parse(line);
        ok({ url: o.url, grpcAddress: o.grpc, child });
      }
    });
    child.on('exit', (code) => fail(new Error(`service exited (${code}) before it was ready`)));
  });
}

async function main() {
  const dir = join(ROOT, 'models', MODEL);
  if (!existsSync(join(dir, 'manifest.json'))) throw new Error(`${dir} has no model set`);
  const set = await loadModelSet(dir);
  const geo = geometryOf(set.manifest.input);
  const size = geo.channels * geo.height * geo.width;
  const pixels = Float32Array.from({ length: size }, (_, i) => ((i * 37 + (i >> 5) * 11) & 255) / 255);
  const raw = Buffer.from(pixels.buffer);
  const shape = [1, geo.channels, geo.height, geo.width];

  console.log(`gRPC benchmark: model set '${MODEL}' ${set.manifest.version}, one FP32 ${shape.join('×')} raw tensor per request`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; S2S_THREADS=${threads} on both sides`);

  const { url, grpcAddress, child } = await startService();
  const graphs = { classifier: loadModel(set.paths.classifier), s2snet: loadModel(set.paths.s2snet) };
  const session = await createSession(buildServingGraph(set.manifest, graphs), { intraOpThreads: Number(threads), allowSpinning: false });
  const dims = shape;
  const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', pixels, dims) };
  if (session.inputNames.includes('noise')) feeds.noise = new ort.Tensor('float32', new Float32Array(size), dims);
  const oneRun = async () => {
    const t0 = performance.now();
    await session.run(feeds, ['probs', 'score']);
    return performance.now() - t0;
  };

  // gRPC client from the published proto
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(ROOT, 'proto', 'grpc_predict_v2.proto'), { keepCase: true, longs: Number, defaults: true })) as unknown as {
    inference: { GRPCInferenceService: new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & { ModelInfer(req: unknown, done: (err: Error | null) => void): void } };
  };
  const client = new pkg.inference.GRPCInferenceService(grpcAddress, grpc.credentials.createInsecure());
  const inferRequest = { model_name: MODEL, inputs: [{ name: 'input', datatype: 'FP32', shape }], outputs: [{ name: 'probs' }, { name: 'score' }], raw_input_contents: [raw] };
  const grpcCall = () =>
    new Promise<number>((ok, fail) => {
      const t0 = performance.now();
      client.ModelInfer(inferRequest, (err: Error | null) => (err ? fail(err) : ok(performance.now() - t0)));
    });

  // HTTP V2 with the binary tensor extension
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape, parameters: { binary_data_size: raw.length } }], outputs: [{ name: 'probs', parameters: { binary_data: true } }, { name: 'score', parameters: { binary_data: true } }] }));
  const body = Buffer.concat([header, raw]);
  const httpHeaders = { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' };
  const pool = new Pool(url, { connections });
  const httpCall = async () => {
    const t0 = performance.now();
    const r = await pool.request({ path: `/v2/models/${MODEL}/infer`, method: 'POST', headers: httpHeaders, body });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) throw new Error(`HTTP answered ${r.statusCode}`);
    return performance.now() - t0;
  };

  /** CPU seconds the service process has used (utime + stime from /proc, 100 ticks/s). */
  const serviceCpu = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  };
  const cpuPerImage: Record<'grpc' | 'http', number[]> = { grpc: [], http: [] };

  /** `connections` loops calling `call` back to back for `seconds`: completed calls per second. */
  const closedLoop = async (call: () => Promise<number>, seconds: number, kind?: 'grpc' | 'http') => {
    const cpu0 = serviceCpu();
    let done = 0;
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          await call();
          done++;
        }
      }),
    );
    if (kind) cpuPerImage[kind].push(((serviceCpu() - cpu0) * 1000) / done);
    return done / seconds;
  };

  // warm-up
  for (let i = 0; i < 30; i++) await Promise.all([grpcCall(), httpCall(), oneRun()]);
  await closedLoop(grpcCall, 1);
  await closedLoop(httpCall, 1);

  const single: Array<{ grpc: number; http: number; graph: number }> = [];
  const tput: Array<{ grpc: number; http: number }> = [];
  for (let r = 0; r < rounds; r++) {
    const g: number[] = [];
    const h: number[] = [];
    const o: number[] = [];
    const n = Math.ceil(singles / rounds);
    for (let i = 0; i < n; i++) g.push(await grpcCall());
    for (let i = 0; i < n; i++) h.push(await httpCall());
    for (let i = 0; i < n; i++) o.push(await oneRun());
    single.push({ grpc: pct(g, 50), http: pct(h, 50), graph: pct(o, 50) });
    // alternate which goes first
    if (r % 2 === 0) tput.push({ grpc: await closedLoop(grpcCall, windowS, 'grpc'), http: await closedLoop(httpCall, windowS, 'http') });
    else {
      const http = await closedLoop(httpCall, windowS, 'http');
      tput.push({ grpc: await closedLoop(grpcCall, windowS, 'grpc'), http });
    }
  }
  client.close();
  await pool.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  await session.release();

  const gOver = single.map((s) => s.grpc - s.graph);
  const hOver = single.map((s) => s.http - s.graph);
  const ratios = tput.map((t) => t.grpc / t.http);
  const rows: Array<[string, string]> = [
    ['in-process serving graph, batch 1', `p50 ${med(single.map((s) => s.graph)).toFixed(3)} ms`],
    ['gRPC ModelInfer, one at a time', `p50 ${med(single.map((s) => s.grpc)).toFixed(3)} ms`],
    ['HTTP V2 binary, one at a time', `p50 ${med(single.map((s) => s.http)).toFixed(3)} ms`],
    ['gRPC p50 overhead (goal ≤ 0.5 ms)', `${med(gOver).toFixed(3)} ms (rounds: ${gOver.map((x) => x.toFixed(3)).join(', ')})`],
    ['HTTP binary p50 overhead', `${med(hOver).toFixed(3)} ms`],
    [`gRPC, ${connections} in flight (${rounds} × ${windowS} s)`, `${med(tput.map((t) => t.grpc)).toFixed(0)} images/s`],
    [`HTTP binary, ${connections} connections`, `${med(tput.map((t) => t.http)).toFixed(0)} images/s`],
    ['service CPU per image under load', `gRPC ${med(cpuPerImage.grpc).toFixed(2)} ms, HTTP binary ${med(cpuPerImage.http).toFixed(2)} ms`],
    ['gRPC / HTTP binary throughput (goal ≥ 0.95)', `${med(ratios).toFixed(3)} (rounds: ${ratios.map((x) => x.toFixed(3)).join(', ')})`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  console.log(
    JSON.stringify({
      model: MODEL,
      threads: Number(threads),
      rounds,
      windowS,
      connections,
      inProcessP50Ms: +med(single.map((s) => s.graph)).toFixed(3),
      grpcP50Ms: +med(single.map((s) => s.grpc)).toFixed(3),
      httpBinaryP50Ms: +med(single.map((s) => s.http)).toFixed(3),
      grpcP50OverheadMs: +med(gOver).toFixed(3),
      httpBinaryP50OverheadMs: +med(hOver).toFixed(3),
      grpcImagesPerS: +med(tput.map((t) => t.grpc)).toFixed(1),
      httpBinaryImagesPerS: +med(tput.map((t) => t.http)).toFixed(1),
      grpcOverHttpThroughput: +med(ratios).toFixed(3),
      serviceCpuMsPerImageGrpc: +med(cpuPerImage.grpc).toFixed(3),
      serviceCpuMsPerImageHttp: +med(cpuPerImage.http).toFixed(3),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
