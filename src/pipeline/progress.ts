import { SingleBar } from 'cli-progress';

/**
 * A progress bar for the evaluation and calibration loops (the trainer draws
 * its own). On a terminal it redraws in place; under nohup or CI it prints a
 * line every few seconds, so a log file shows how far a long run got.
 */
export interface Progress {
  tick(n: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

export const silentProgress: Progress = { tick: () => undefined, stop: () => undefined };

export function progressBar(label: string, total: number, unit = 'img'): Progress {
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}{info}`,
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 5000,
    etaBuffer: 50,
    hideCursor: false,
  });
  const start = Date.now();
  let done = 0;
  bar.start(total, 0, { rate: '0', info: '' });
  return {
    tick(n, extra) {
      done += n;
      const s = (Date.now() - start) / 1000;
      const info = extra ? ' | ' + Object.entries(extra).map(([k, v]) => `${k} ${v}`).join(' ') : '';
      bar.update(done, { rate: s > 0 ? (done / s).toFixed(0) : '0', info });
    },
    stop() {
      bar.stop();
    },
  };
}
