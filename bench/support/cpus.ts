import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { arg } from './cli';

/**
 * Keeping a load generator off the service's cores (taskset), for the
 * benches that charge the service only for its own CPU: --service-cpus
 * (default 0) and --client-cpus (default: the others), which must be apart.
 * `fail` prints one line and exits 2.
 */
export interface CpuSplit {
  service: number[];
  client: number[];
}

/** "0-2,5" → [0, 1, 2, 5], each a core of this machine. */
export function cpuList(flag: string, text: string, fail: (message: string) => never): number[] {
  const out = new Set<number>();
  for (const part of text.split(',').filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) fail(`--${flag} '${text}' is not a CPU list such as 0 or 0-3,6`);
    const [a, b] = [Number(m![1]), Number(m![2] ?? m![1])];
    if (b < a) fail(`--${flag} '${text}': range ${part} runs backwards`);
    for (let c = a; c <= b; c++) out.add(c);
  }
  if (!out.size) fail(`--${flag} is empty`);
  for (const c of out) if (c >= cpus().length) fail(`--${flag} names CPU ${c}; this machine has ${cpus().length} (0–${cpus().length - 1})`);
  return [...out].sort((x, y) => x - y);
}

/** The split from the command line, with this process (the load generator) pinned to the client's cores. */
export function splitCpus(fail: (message: string) => never): CpuSplit {
  const service = cpuList('service-cpus', arg('service-cpus', '0'), fail);
  const others = cpus()
    .map((_, i) => i)
    .filter((i) => !service.includes(i));
  const client = cpuList('client-cpus', arg('client-cpus', others.join(',')), fail);
  const shared = client.find((c) => service.includes(c));
  if (shared !== undefined) fail(`--service-cpus and --client-cpus share CPU ${shared}; they must be apart`);
  if (spawnSync('taskset', ['--version']).status !== 0) fail('needs taskset (util-linux) to keep the load generator off the service’s cores');
  const pinSelf = spawnSync('taskset', ['-a', '-cp', client.join(','), String(process.pid)]);
  if (pinSelf.status !== 0) fail(`could not pin the load generator to CPUs ${client.join(',')}: ${pinSelf.stderr.toString().trim()}`);
  return { service, client };
}

/** `node --import tsx ARGS`, pinned to `cores`. */
export function spawnPinned(cores: number[], args: string[], opts: Parameters<typeof spawn>[2]): ChildProcess {
  return spawn('taskset', ['-c', cores.join(','), process.execPath, '--import', 'tsx', ...args], opts);
}

/**
 * CPU milliseconds each thread of a process has used (Linux /proc): the main
 * thread as `main`, the others summed by name (`node` for worker threads and
 * the threads ONNX Runtime starts in them, `libuv-worker`, …).
 */
export function threadCpuMs(pid: number): Record<string, number> {
  const tick = 1000 / 100; // USER_HZ is 100 on every Linux this runs on
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) * tick; // utime + stime
  }
  return out;
}

/** What each thread name used between two readings of threadCpuMs. */
export function cpuSince(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));
}
