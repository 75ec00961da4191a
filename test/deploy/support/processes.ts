import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A child process whose recent output is kept for error messages. */
export interface Child {
  name: string;
  proc: ChildProcess;
  output: () => string;
  exited: () => boolean;
}

export function startChild(name: string, cmd: string, args: string[], opts: SpawnOptions): Child {
  const proc = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-8000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let done = false;
  proc.on('exit', () => (done = true));
  proc.on('error', (e) => {
    done = true;
    out += `\n[spawn error] ${String(e)}`;
  });
  return { name, proc, output: () => out, exited: () => done };
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(c: Child | undefined, graceMs = 10000): Promise<void> {
  if (!c || c.exited()) return;
  const exited = new Promise<void>((resolve) => c.proc.once('exit', () => resolve()));
  c.proc.kill('SIGTERM');
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls `check` until it returns a value (not undefined), the child dies, or `timeoutMs` passes; the
 * error names what was awaited and shows the children's output. A wait, not a timed assertion.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, children: Child[], timeoutMs = 60000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const dead = children.find((c) => c.exited());
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${dead.output()}`);
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}\n${children.map((c) => `--- ${c.name}:\n${c.output()}`).join('\n')}`);
    }
    await sleep(250);
  }
}
