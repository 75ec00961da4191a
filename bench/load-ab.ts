/**
 * Settings compared under load (not a test: it measures time). Runs
 * bench/load.ts once per variant per round, the variants in alternation
 * (A B C A B C …, each round in the opposite order to the one before), so
 * every variant sees the same background load on a shared machine; then
 * tabulates, per variant, the median over rounds of: capacity at
 * concurrency 32 and its ratio to the in-process graph, event-loop delay p99
 * and liveness p99 (traffic port, then health port) at c=32, in the
 * closed-loop flood and in the open loop,
 * and goodput at 4× capacity.
 *
 *   npx tsx bench/load-ab.ts --variants 'default:;one-thread:--threads 1;nice-10:--service-env S2S_INFERENCE_NICE=10' [--rounds 2] [--phase-s 6]
 *
 * A variant is `name:load.ts arguments` (split on spaces), or
 * `name@/other/checkout:arguments` to run that checkout's bench/load.ts and
 * service (the project before a change); hostile bodies, soak and SIGTERM
 * are skipped (`--skip` adds more).
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { arg } from './support/cli';

const rounds = Number(arg('rounds', '2'));
const phaseS = arg('phase-s', '6');
const skip = ['hostile', 'soak', 'sigterm', ...arg('skip', '').split(',').filter(Boolean)].join(',');
const variants = arg('variants', 'default:')
  .split(';')
  .filter(Boolean)
  .map((v) => {
    const i = v.indexOf(':');
    const [name, root = join(__dirname, '..')] = (i < 0 ? v : v.slice(0, i)).split('@');
    return { name, root, args: i < 0 ? [] : v.slice(i + 1).split(' ').filter(Boolean) };
  });

/** The middle value (the mean of the middle two for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

type Result = Record<string, unknown> & { closed?: Record<string, number>; open?: Record<string, number> };

function runLoad(root: string, args: string[]): Promise<Result> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'load.ts'), '--phase-s', phaseS, '--skip', skip, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d.toString().replace(/^/gm, '    '));
    });
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) fail(new Error(`load.ts ${args.join(' ')} exited ${code}`));
      else ok(JSON.parse(last) as Result);
    });
  });
}

const COLUMNS: Array<[string, (r: Result) => number | undefined, number]> = [
  ['capacity c=32 (img/s)', (r) => r.capacity as number, 0],
  ['ratio to in-process', (r) => r.throughputRatio as number, 2],
  ['loop p99 c=32 (ms)', (r) => r.c32LoopP99Ms as number, 1],
  ['liveness p99 c=32 (ms)', (r) => r.c32LiveP99Ms as number, 1],
  ['  same, health port (ms) c=32', (r) => r.c32HealthLiveP99Ms as number, 1],
  ['closed 4×: goodput share', (r) => r.closed?.goodputShare, 2],
  ['closed 4×: goodput (img/s)', (r) => r.closed?.goodput, 0],
  ['closed 4×: loop p99 (ms)', (r) => r.closed?.loopP99Ms, 1],
  ['closed 4×: liveness p99 (ms)', (r) => r.closed?.liveP99Ms, 1],
  ['  same, health port (ms) closed', (r) => r.closed?.healthLiveP99Ms, 1],
  ['closed 4×: accepted p99 (ms)', (r) => r.closed?.okP99, 0],
  ['open 4×: goodput share', (r) => r.open?.goodputShare, 2],
  ['open 4×: goodput (img/s)', (r) => r.open?.goodput, 0],
  ['open 4×: loop p99 (ms)', (r) => r.open?.loopP99Ms, 1],
  ['open 4×: liveness p99 (ms)', (r) => r.open?.liveP99Ms, 1],
  ['  same, health port (ms) open', (r) => r.open?.healthLiveP99Ms, 1],
  ['open 4×: accepted p99 (ms)', (r) => r.open?.okP99, 0],
  ['raw-tensor p50 overhead (ms)', (r) => r.overheadP50Ms as number, 2],
];

async function main() {
  console.log(`load A/B: ${variants.map((v) => `${v.name} [${v.args.join(' ') || 'defaults'}${v.root === join(__dirname, '..') ? '' : ` from ${v.root}`}]`).join(', ')}; ${rounds} rounds, phases of ${phaseS} s, skipping ${skip}`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const results = new Map<string, Result[]>(variants.map((v) => [v.name, []]));
  const loads: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      console.log(`\n--- round ${r + 1}, ${v.name} (load average ${loadavg()[0].toFixed(1)})`);
      loads.push(loadavg()[0]);
      results.get(v.name)!.push(await runLoad(v.root, v.args));
    }
  }
  const w = Math.max(...COLUMNS.map(([c]) => c.length));
  console.log(`\nmedian over ${rounds} rounds (each round's value in brackets); load average during the runs ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${cpus().length} cores`);
  console.log(`  ${''.padEnd(w)}  ${variants.map((v) => v.name.padStart(22)).join('')}`);
  const table: Record<string, Record<string, number>> = {};
  for (const [label, get, digits] of COLUMNS) {
    const cells = variants.map((v) => {
      const xs = results.get(v.name)!.map(get).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      (table[v.name] ??= {})[label] = +median(xs).toFixed(3);
      return `${median(xs).toFixed(digits)} [${xs.map((x) => x.toFixed(digits)).join(' ')}]`;
    });
    console.log(`  ${label.padEnd(w)}  ${cells.map((c) => c.padStart(22)).join('')}`);
  }
  console.log(JSON.stringify({ rounds, phaseS: Number(phaseS), variants, table }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
