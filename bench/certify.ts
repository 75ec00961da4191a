/**
 * Certification benchmark (not a test): POST /v1/certify against the same
 * base-classifier graph run in this process at the same batch size, in
 * rounds that alternate so both sides see the same background load.
 *
 *   service:    `s2s serve` (own process, loopback), one image per request,
 *               n draws (+100 selection), S2S_CERTIFY_BATCH noisy copies per
 *               session run; `--clients` requests in flight at once
 *   in-process: the set's served base classifier (f ∘ d with its smoothing
 *               denoiser, else f ∘ s) in one onnxruntime-node session,
 *               CERTIFY with the same n, n₀, batch, CSPRNG noise, `--clients`
 *               images certified concurrently
 *
 * Prints latency per image and images/s for both, and the ratio (issue 16's
 * goal: service ≥ 0.9 × in-process): the median over rounds of each round's
 * ratio, rounds in ABBA order.
 *
 *   npx tsx bench/certify.ts [--n 1000] [--batch 1000] [--images 4] [--rounds 2] [--clients 1] [--threads 1] [--out FILE]
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { request } from 'undici';
import { baseGraphsOf, buildBaseClassifier } from '../src/certify/base-classifier';
import { servedBase } from '../src/certify/certifying-model';
import { openBaseSession } from '../src/certify/base-session';
import { cryptoNoise } from '../src/certify/noise-source';
import { drawSampler } from '../src/certify/sampler';
import { certify } from '../src/certify/smoothing';
import { loadFashionMnist } from '../src/data/fashionMnist';
import { loadModelSet } from '../src/models/loader';
import { arg } from './support/cli';

const ROOT = join(__dirname, '..');
const n = Number(arg('n', '1000'));
const batch = Number(arg('batch', '1000'));
const images = Number(arg('images', '4'));
const rounds = Number(arg('rounds', '2'));
const clients = Number(arg('clients', '1'));
const threads = Number(arg('threads', '1'));
const SIGMA = 0.25;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs `work(i)` for i < count with `clients` in flight; returns per-item ms and the total ms. */
async function pool(count: number, work: (i: number) => Promise<void>): Promise<{ each: number[]; totalMs: number }> {
  const each: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < count) {
        const i = next++;
        const s = performance.now();
        await work(i);
        each.push(performance.now() - s);
      }
    }),
  );
  return { each, totalMs: performance.now() - t0 };
}

async function main(): Promise<void> {
  const setDir = join(ROOT, 'models', 'fashion-mnist');
  const set = await loadModelSet(setDir);
  const m = set.manifest;
  const ds = loadFashionMnist({ split: 'test' });
  const rows = Array.from({ length: images }, (_, i) => i * 97);
  const pixels = rows.map((r) => ds.pixels.subarray(r * 784, (r + 1) * 784));
  const pngs = await Promise.all(pixels.map((p) => sharp(Buffer.from(p), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer()));
  const floats = pixels.map((p) => Float32Array.from(p, (v) => v / 255));

  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      S2S_MODELS_DIR: join(ROOT, 'models'),
      S2S_MODEL: 'fashion-mnist',
      S2S_THREADS: String(threads),
      S2S_CERTIFY_BATCH: String(batch),
      S2S_CERTIFY_N: String(n),
      S2S_CERTIFY_MAX_N: String(Math.max(n, 10000)),
      S2S_CERTIFY_SIGMA: String(SIGMA),
      S2S_REQUEST_TIMEOUT_MS: '600000',
      S2S_MAX_EVENT_LOOP_DELAY_MS: '0',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.includes('"ready"')) resolve(JSON.parse(l).url);
    });
    child.on('exit', (c) => reject(new Error(`server exited (${c})`)));
  });
  const base = servedBase(m);
  const graph = buildBaseClassifier(m, baseGraphsOf(set, [base]), base);
  const h = await openBaseSession(graph, [1, 28, 28], { intraOpThreads: threads, label: `in-process ${base}`, allowSpinning: false });

  const service = async () =>
    pool(images, async (i) => {
      const r = await request(`${url}/v1/certify?n=${n}&sigma=${SIGMA}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: pngs[i] });
      const body = (await r.body.json()) as { results: unknown[] };
      if (r.statusCode !== 200 || body.results.length !== 1) throw new Error(`service answered ${r.statusCode}`);
    });
  const inProcess = async () =>
    pool(images, async (i) => {
      await certify(drawSampler({ pixels: floats[i], sigma: SIGMA, classes: m.labels.length, batch, noise: cryptoNoise, run: h.run }), { sigma: SIGMA, n0: 100, n, alpha: 0.001 });
    });

  // Warm-up: one image each (first runs allocate ORT's arenas).
  await request(`${url}/v1/certify?n=${batch}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: pngs[0] }).then((r) => r.body.dump());
  await certify(drawSampler({ pixels: floats[0], sigma: SIGMA, classes: m.labels.length, batch, noise: cryptoNoise, run: h.run }), { sigma: SIGMA, n0: 100, n: batch, alpha: 0.001 });

  const svc: Array<{ ips: number; p50: number }> = [];
  const inp: Array<{ ips: number; p50: number }> = [];
  // ABBA order: whichever side went first would otherwise see a systematically different background load.
  for (let r = 0; r < rounds; r++) {
    const sides = r % 2 === 0 ? ['service', 'in-process'] : ['in-process', 'service'];
    for (const side of sides) {
      const t = side === 'service' ? await service() : await inProcess();
      (side === 'service' ? svc : inp).push({ ips: (1000 * images) / t.totalMs, p50: median(t.each) });
    }
    process.stderr.write(`round ${r + 1}/${rounds}: service ${svc[r].ips.toFixed(3)} img/s (p50 ${svc[r].p50.toFixed(0)} ms), in-process ${inp[r].ips.toFixed(3)} img/s (p50 ${inp[r].p50.toFixed(0)} ms)\n`);
  }
  child.kill('SIGTERM');
  await h.session.release();

  const result = {
    settings: { n, n0: 100, batch, images, rounds, clients, threads, sigma: SIGMA, base, model: `${m.name}@${m.version}` },
    machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(2))) },
    service: { imagesPerSecond: median(svc.map((x) => x.ips)), latencyMsP50: median(svc.map((x) => x.p50)) },
    inProcess: { imagesPerSecond: median(inp.map((x) => x.ips)), latencyMsP50: median(inp.map((x) => x.p50)) },
    ratio: median(svc.map((x, i) => x.ips / inp[i].ips)),
    roundRatios: svc.map((x, i) => Number((x.ips / inp[i].ips).toFixed(3))),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`service / in-process throughput: ${result.ratio.toFixed(3)} (goal ≥ 0.9: ${result.ratio >= 0.9 ? 'met' : 'NOT met'})\n`);
  const out = arg('out', '');
  if (out) writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
