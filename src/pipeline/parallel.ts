import { spawn } from 'node:child_process';
import { UserError } from '../util/errors';

/**
 * Runs the default recipe's training stages side by side: every stage is a
 * child process of this same CLI (`s2s train default --only <stage>`), at
 * most `jobs` at a time, each started as soon as the stages it builds on
 * have finished. On a small machine two single-threaded stages keep both
 * cores busier than one two-threaded stage (small convolutions split poorly),
 * and a stage run on one thread is exactly what the committed models were
 * trained with.
 */

/** The stages a stage needs finished first (ids as in default-set.ts). */
export function dependencies(stage: string, all: readonly string[]): string[] {
  // Stage 2 and the smoothing denoiser both fine-tune the stage-1 decoder through their classifier.
  for (const prefix of ['s2snet:', 'smoothing:']) {
    if (stage.startsWith(prefix)) return ['autoencoder', `classifier:${stage.slice(prefix.length)}`].filter((s) => all.includes(s));
  }
  if (stage === 'sets') return all.filter((s) => s !== 'sets');
  return [];
}

export interface ParallelOptions {
  stages: string[];
  jobs: number;
  /** command-line arguments of one stage's child process */
  argsFor: (stage: string) => string[];
  log: (line: string) => void;
  /** how to start this CLI again (default: this process's node, its loader flags and script) */
  command?: { file: string; args: string[] };
}

export interface StageRunRecord {
  stage: string;
  seconds: number;
  code: number;
}

function runChild(cmd: { file: string; args: string[] }, stage: string, log: (l: string) => void): Promise<StageRunRecord> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let rest = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const lines = (rest + chunk).split(/\r?\n|\r/);
      rest = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) log(`[${stage}] ${l}`);
    });
    const done = (code: number) => {
      if (rest.trim()) log(`[${stage}] ${rest}`);
      resolve({ stage, seconds: (performance.now() - t0) / 1000, code });
    };
    child.on('error', (e) => {
      log(`[${stage}] cannot start: ${e.message}`);
      done(127);
    });
    child.on('close', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
}

export async function runStagesInParallel(o: ParallelOptions): Promise<StageRunRecord[]> {
  if (!(o.jobs >= 1)) throw new UserError(`--jobs must be at least 1, got ${o.jobs}`);
  const self = o.command ?? { file: process.execPath, args: [...process.execArgv, process.argv[1]] };
  const pending = [...o.stages];
  const finished = new Set<string>();
  const running = new Map<string, Promise<StageRunRecord>>();
  const records: StageRunRecord[] = [];
  let failed: StageRunRecord | undefined;
  while (pending.length || running.size) {
    while (!failed && running.size < o.jobs) {
      const i = pending.findIndex((s) => dependencies(s, o.stages).every((d) => finished.has(d)));
      if (i < 0) break;
      const stage = pending.splice(i, 1)[0];
      o.log(`starting ${stage} (${running.size + 1} running)`);
      running.set(stage, runChild({ file: self.file, args: [...self.args, ...o.argsFor(stage)] }, stage, o.log));
    }
    if (running.size === 0) {
      if (failed) break;
      throw new Error(`stages ${pending.join(', ')} wait for stages that never run`);
    }
    const r = await Promise.race(running.values());
    running.delete(r.stage);
    records.push(r);
    if (r.code === 0) finished.add(r.stage);
    else failed ??= r;
    o.log(`${r.stage}: ${r.code === 0 ? 'finished' : `failed (exit code ${r.code})`} after ${(r.seconds / 60).toFixed(1)} min`);
  }
  if (failed) throw new UserError(`stage ${failed.stage} failed (exit code ${failed.code}); its output is above. Fix the cause and rerun with --resume`);
  return records;
}
