import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Scheduling priority of one thread (Linux). ONNX Runtime's threads can take
 * every core they are given; the event loop then waits for a time slice and
 * the service stops accepting, answering and refusing on time. A worker
 * thread that lowers its own priority before it opens a session lowers that
 * of every intra-op thread ORT creates afterwards too (a new thread inherits
 * its creator's nice value), while the main thread keeps its own: when both
 * want a core, the kernel gives the event loop most of it, and ORT still has
 * every cycle the event loop leaves.
 */

/** The kernel's id of the calling thread, or undefined where there is no /proc/thread-self (not Linux). */
export function kernelThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

export type PriorityOutcome = { applied: true; tid: number; nice: number } | { applied: false; reason: string };

/**
 * Lowers the calling thread's priority by `steps` nice values (1–19; the
 * result stops at 19), relative to what it has now, so a service started
 * under `nice` keeps its inference threads below its event loop. Only this
 * thread and the threads it creates from now on change; elsewhere than
 * Linux nothing changes (setpriority there would lower the whole process,
 * the event loop included).
 */
export function lowerThreadPriority(steps: number): PriorityOutcome {
  if (!(Number.isInteger(steps) && steps >= 0 && steps <= 19)) throw new Error(`nice steps must be a whole number from 0 to 19, got ${steps}`);
  const tid = kernelThreadId();
  if (tid === undefined) return { applied: false, reason: 'per-thread priority needs Linux (/proc/thread-self)' };
  try {
    const nice = Math.min(19, getPriority(tid) + steps);
    // On Linux setpriority(PRIO_PROCESS, tid) acts on that one thread.
    setPriority(tid, nice);
    return { applied: true, tid, nice };
  } catch (e) {
    return { applied: false, reason: (e as Error).message };
  }
}

/** Nice value of every thread of this process by kernel id (Linux; empty elsewhere). */
export function threadNiceValues(): Map<number, number> {
  const out = new Map<number, number>();
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      // fields after the command name (which may hold spaces); nice is field 19 of stat, the 17th after it
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(t), Number(fields[16]));
    } catch {
      // the thread ended between listing and reading
    }
  }
  return out;
}
