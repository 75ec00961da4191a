/**
 * Serving throughput against the same graph in-process, with the load
 * generator kept off the service's cores (not a test: it measures time).
 *
 * bench/load.ts measures capacity with its clients on the same cores as the
 * service, so its throughput ratio also charges the service for the load
 * generator's CPU, which in production runs on other machines. Here the
 * service and its in-process baseline are pinned (taskset) to the same
 * cores, with the same ORT threads (one per core, no spinning), and the
 * client to the others. Rounds alternate: concurrency 32 against the live
 * service for a phase, then the serving graph in a pinned process of its own
 * at the batch size the service formed (bench/support/in-process-rate.ts).
 * Per request body it prints images/s on both sides and their ratio, CPU
 * time per image on both sides (the service's from its own
 * process_cpu_seconds_total), and how busy the client's cores were.
 *
 *   npx tsx bench/throughput.ts [--service-cpus 0] [--client-cpus 1] [--rounds 4] [--phase-s 6]
 *                               [--concurrency 32] [--bodies tensor,png,png-convert] [--models-dir DIR --model NAME]
 *                               [--service-env K=V,K=V]
 *
 * Bodies, one image per request: `tensor` a V2 binary tensor (no decode:
 * the serving path itself); `png` a PNG of the model's size and colour type
 * on /v1/classify (decoded in-line, src/serving/plain-png.ts); `png-convert`
 * the same pixels in the other colour type (RGB for a grey model), which
 * sharp decodes and converts.
 */
import type { ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { decodeImage } from '../src/serving/image';
import { Target, closedLoop, pct } from './load-clients';
import { arg } from './support/cli';
import { spawnPinned, splitCpus } from './support/cpus';
import { benchPngs, startPinnedService } from './support/pinned-service';
import { serviceEnvFlag } from './support/service';
import type { RateAnswer, RateRequest } from './support/in-process-rate';

const ROOT = join(__dirname, '..');

function fail(message: string): never {
  console.error(`bench/throughput: ${message}`);
  process.exit(2);
}

const { service: serviceCpus, client: clientCpus } = splitCpus(fail);
const rounds = Number(arg('rounds', '4'));
const phaseS = Number(arg('phase-s', '6'));
const concurrency = Number(arg('concurrency', '32'));
const bodies = arg('bodies', 'tensor,png,png-convert').split(',').filter(Boolean);
for (const b of bodies) if (!['tensor', 'png', 'png-convert'].includes(b)) fail(`--bodies: '${b}' is not tensor, png or png-convert`);
for (const [name, v] of [['rounds', rounds], ['phase-s', phaseS], ['concurrency', concurrency]] as const) if (!(v > 0)) fail(`--${name} must be a positive number`);
const modelsDir = arg('models-dir', join(ROOT, 'models'));
const model = arg('model', 'fashion-mnist');
const serviceEnv = serviceEnvFlag();
/** the service's own rule: one ORT thread per core it may use */
const threads = serviceCpus.length;

/** Spawns a command pinned to the service's cores. */
const pinned = (args: string[], opts: Parameters<typeof spawnPinned>[2]): ChildProcess => spawnPinned(serviceCpus, args, opts);

const startService = () => startPinnedService({ cores: serviceCpus, modelsDir, model, serviceEnv });

function startBaseline(): Promise<{ child: ChildProcess; rate: (r: RateRequest) => Promise<RateAnswer> }> {
  const child = pinned([join(__dirname, 'support', 'in-process-rate.ts'), modelsDir, model, String(threads)], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const rate = (r: RateRequest) =>
    new Promise<RateAnswer>((ok) => {
      child.once('message', (m) => ok(m as RateAnswer));
      child.send(r);
    });
  return new Promise((ok, no) => {
    child.once('message', () => ok({ child, rate }));
    child.once('exit', (code) => no(new Error(`the in-process baseline exited (${code}) before it was ready`)));
  });
}

const metric = (text: string, name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');

interface Round {
  served: number;
  batch: number;
  baseline: number;
  serviceCpuMs: number;
  baselineCpuMs: number;
  clientBusy: number;
  non200: number;
}

async function main() {
  // the model's own size and colour type (decoded in-line), and the other colour type (sharp converts it)
  const { geo, png, pngConvert } = await benchPngs(modelsDir, model);
  const pixels = await decodeImage(png, geo, 1e8);
  const dims = [1, geo.channels, geo.height, geo.width];
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: dims, parameters: { binary_data_size: pixels.byteLength } }] }));
  const targets: Record<string, (url: string) => Target> = {
    tensor: (url) => ({
      url,
      path: `/v2/models/${model}/infer`,
      body: Buffer.concat([header, Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    }),
    png: (url) => ({ url, path: '/v1/classify', body: png, headers: { 'content-type': 'image/png' } }),
    'png-convert': (url) => ({ url, path: '/v1/classify', body: pngConvert, headers: { 'content-type': 'image/png' } }),
  };

  console.log(`s2s serving throughput: model set '${model}' (${geo.channels}×${geo.height}×${geo.width}), concurrency ${concurrency}, ${rounds} rounds × ${phaseS} s per side and body`);
  console.log(`service and in-process baseline pinned to CPU ${serviceCpus.join(',')} (${threads} ORT thread(s), no spinning, one inference worker); load generator pinned to CPU ${clientCpus.join(',')}`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}${Object.keys(serviceEnv).length ? `; service environment ${JSON.stringify(serviceEnv)}` : ''}`);

  const svc = await startService();
  const base = await startBaseline();
  const results: Record<string, Round[]> = Object.fromEntries(bodies.map((b) => [b, []]));
  try {
    for (const b of bodies) await closedLoop(targets[b](svc.url), concurrency, 2); // warm-up: JIT, arenas, connections
    for (let r = 0; r < rounds; r++) {
      for (const b of bodies) {
        const before = await scrape(svc.url);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const samples = await closedLoop(targets[b](svc.url), concurrency, phaseS);
        const seconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const after = await scrape(svc.url);
        const images = metric(after, 's2s_batch_size_sum') - metric(before, 's2s_batch_size_sum');
        const batches = metric(after, 's2s_batch_size_count') - metric(before, 's2s_batch_size_count');
        const ok = samples.filter((s) => s.status === 200).length;
        const batch = batches > 0 ? images / batches : 1;
        const baseline = await base.rate({ batch: Math.max(1, Math.round(batch)), seconds: phaseS });
        results[b].push({
          served: ok / seconds,
          batch,
          baseline: baseline.images / baseline.seconds,
          serviceCpuMs: images > 0 ? ((metric(after, 'process_cpu_seconds_total') - metric(before, 'process_cpu_seconds_total')) * 1000) / images : NaN,
          baselineCpuMs: (baseline.cpuSeconds * 1000) / baseline.images,
          clientBusy: (cpu.user + cpu.system) / 1e6 / seconds / clientCpus.length,
          non200: samples.length - ok,
        });
        const x = results[b][r];
        console.log(
          `  round ${r + 1} ${b.padEnd(11)} service ${f(x.served, 0)} img/s (mean batch ${f(x.batch)}${x.non200 ? `, ${x.non200} not 200` : ''}) · in-process ${f(x.baseline, 0)} img/s → ${f((x.served / x.baseline) * 100)} %; CPU per image ${f(x.serviceCpuMs, 3)} vs ${f(x.baselineCpuMs, 3)} ms; client cores ${f(x.clientBusy * 100, 0)} % busy`,
        );
      }
    }
  } finally {
    svc.child.kill('SIGTERM');
    base.child.kill('SIGTERM');
  }
  console.log('\nmedians over the rounds:');
  for (const b of bodies) {
    const rs = results[b];
    const ratio = pct(
      rs.map((x) => x.served / x.baseline),
      50,
    );
    const cpuRatio = pct(
      rs.map((x) => x.serviceCpuMs / x.baselineCpuMs),
      50,
    );
    console.log(
      `  ${b.padEnd(11)} service ${f(pct(rs.map((x) => x.served), 50), 0)} img/s, in-process ${f(pct(rs.map((x) => x.baseline), 50), 0)} img/s at batch ${f(pct(rs.map((x) => x.batch), 50))} → throughput ratio ${f(ratio, 3)} (goal ≥ 0.95); CPU per image ${f(cpuRatio, 3)}× the in-process run's`,
    );
  }
  process.exit(0);
}

main().catch((e: Error) => fail(e.message));
