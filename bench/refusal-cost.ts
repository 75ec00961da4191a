/**
 * What refusing costs (not a test: it measures time). Under a closed-loop
 * flood every refusal is answered at once and the client sends the next
 * request straight away, so the refusals/s are set by how fast the client
 * is, and each costs the service's cores some CPU that inference then lacks.
 * This bench measures that cost and the ceiling it puts on goodput, in one
 * run, with the load generator pinned off the service's cores:
 *   1. a bare node:http server answering every request 503 + Retry-After
 *      (bench/support/bare-refusal-server.ts), pinned like the service: the
 *      floor, Node's HTTP stack alone;
 *   2. the service at concurrency 32: images/s, main-thread CPU per request
 *      and inference-thread CPU per image (per-thread CPU from /proc);
 *   3. the service under 1024 closed-loop keep-alive connections: refusals/s,
 *      goodput against (2), and the main thread's CPU per refusal (its CPU
 *      less the accepted requests' share at the per-request cost of (2)).
 * The ceiling printed is 1 − (refusals/s × CPU per refusal) / service cores:
 * the share of the service's cores left to inference, an upper bound on
 * goodput / capacity whatever the scheduling.
 *
 *   npx tsx bench/refusal-cost.ts [--service-cpus 0] [--client-cpus 1] [--rounds 2] [--phase-s 6]
 *                                 [--connections 1024] [--models-dir DIR --model NAME] [--service-env K=V,K=V]
 */
import type { ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Sample, Target, closedLoop, pct } from './load-clients';
import { arg } from './support/cli';
import { cpuSince, spawnPinned, splitCpus, threadCpuMs } from './support/cpus';
import { benchPngs, startPinnedService } from './support/pinned-service';
import { serviceEnvFlag } from './support/service';

const ROOT = join(__dirname, '..');

function fail(message: string): never {
  console.error(`bench/refusal-cost: ${message}`);
  process.exit(2);
}

const cores = splitCpus(fail);
const rounds = Number(arg('rounds', '2'));
const phaseS = Number(arg('phase-s', '6'));
const connections = Number(arg('connections', '1024'));
for (const [name, v] of [['rounds', rounds], ['phase-s', phaseS], ['connections', connections]] as const) if (!(v > 0)) fail(`--${name} must be a positive number`);
const modelsDir = arg('models-dir', join(ROOT, 'models'));
const model = arg('model', 'fashion-mnist');
const serviceEnv = serviceEnvFlag();
const threads = cores.service.length;
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, x) => a + x, 0);
const count = (samples: Sample[], status: number) => samples.filter((s) => s.status === status).length;

const startService = () => startPinnedService({ cores: cores.service, modelsDir, model, serviceEnv });

async function startBare(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawnPinned(cores.service, [join(__dirname, 'support', 'bare-refusal-server.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((ok, no) => {
    createInterface({ input: child.stdout! }).once('line', ok);
    child.once('exit', (code) => no(new Error(`the bare server exited (${code}) before it listened`)));
  });
  return { url: `http://127.0.0.1:${Number(line)}`, child };
}

/** The samples of a closed loop and what each thread of `pid` used meanwhile. */
async function measured(pid: number, t: Target, conns: number) {
  const before = threadCpuMs(pid);
  const t0 = performance.now();
  const samples = await closedLoop(t, conns, phaseS);
  const seconds = (performance.now() - t0) / 1000;
  return { samples, seconds, cpu: cpuSince(before, threadCpuMs(pid)) };
}

interface Round {
  bareRate: number;
  bareUs: number;
  capacity: number;
  mainUsPerAccepted: number;
  inferenceMsPerImage: number;
  refusals: number;
  goodput: number;
  errors: number;
  mainUsPerRefusal: number;
  refusingShare: number;
}

async function main() {
  // a PNG of the model's size and colour type: the cheapest request the service accepts
  const { png } = await benchPngs(modelsDir, model);
  const classify = (url: string): Target => ({ url, path: '/v1/classify', body: png, headers: { 'content-type': 'image/png' } });

  console.log(`s2s refusal cost: model set '${model}', ${connections} closed-loop connections against concurrency 32, ${rounds} rounds × ${phaseS} s per phase`);
  console.log(`service and bare server pinned to CPU ${cores.service.join(',')} (${threads} ORT thread(s)); load generator pinned to CPU ${cores.client.join(',')}`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}${Object.keys(serviceEnv).length ? `; service environment ${JSON.stringify(serviceEnv)}` : ''}`);

  const svc = await startService();
  const bare = await startBare();
  const rs: Round[] = [];
  try {
    await closedLoop(classify(svc.url), 32, 2); // warm-up: JIT, arenas, connections
    await closedLoop(classify(bare.url), connections, 1);
    for (let r = 0; r < rounds; r++) {
      const b = await measured(bare.child.pid!, classify(bare.url), connections);
      const c32 = await measured(svc.child.pid!, classify(svc.url), 32);
      const flood = await measured(svc.child.pid!, classify(svc.url), connections);
      const accepted32 = count(c32.samples, 200);
      const mainUsPerAccepted = (c32.cpu.main * 1000) / accepted32;
      const accepted = count(flood.samples, 200);
      const refused = count(flood.samples, 503);
      const mainUsPerRefusal = (flood.cpu.main * 1000 - accepted * mainUsPerAccepted) / refused;
      const x: Round = {
        bareRate: b.samples.length / b.seconds,
        bareUs: (sum(b.cpu) * 1000) / b.samples.length,
        capacity: accepted32 / c32.seconds,
        mainUsPerAccepted,
        inferenceMsPerImage: (c32.cpu.node ?? 0) / accepted32,
        refusals: refused / flood.seconds,
        goodput: accepted / flood.seconds,
        errors: flood.samples.filter((s) => s.error).length,
        mainUsPerRefusal,
        refusingShare: ((refused / flood.seconds) * mainUsPerRefusal) / 1e6 / cores.service.length,
      };
      rs.push(x);
      console.log(
        `  round ${r + 1}: bare node:http ${f(x.bareRate, 0)} refusals/s at ${f(x.bareUs)} µs CPU each · service c=32 ${f(x.capacity, 0)} img/s (main thread ${f(x.mainUsPerAccepted)} µs per request, inference ${f(x.inferenceMsPerImage, 3)} ms per image) · ` +
          `flood ${f(x.refusals, 0)} refusals/s at ${f(x.mainUsPerRefusal)} µs each, goodput ${f(x.goodput, 0)} img/s = ${f((x.goodput / x.capacity) * 100)} % of capacity${x.errors ? `, ${x.errors} connection errors` : ''}`,
      );
    }
  } finally {
    svc.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
  const med = (k: keyof Round) => pct(
    rs.map((x) => x[k]),
    50,
  );
  const perRefusal = med('mainUsPerRefusal');
  const bareUs = med('bareUs');
  console.log('\nmedians over the rounds:');
  console.log(`  a refusal costs the service ${f(perRefusal)} µs of main-thread CPU; a bare node:http server ${f(bareUs)} µs (${f(perRefusal / bareUs, 2)}× the floor)`);
  console.log(`  an accepted request costs the main thread ${f(med('mainUsPerAccepted'))} µs and inference ${f(med('inferenceMsPerImage'), 3)} ms per image`);
  console.log(
    `  under the flood, ${f(med('refusals'), 0)} refusals/s took ${f(med('refusingShare') * 100)} % of the service's ${cores.service.length} core(s): goodput can be at most ${f((1 - med('refusingShare')) * 100)} % of capacity; measured ${f((med('goodput') / med('capacity')) * 100)} %`,
  );
  console.log(`  at the bare server's cost per refusal the same rate would take ${f(((med('refusals') * bareUs) / 1e6 / cores.service.length) * 100)} %`);
  process.exit(0);
}

main().catch((e: Error) => fail(e.message));
