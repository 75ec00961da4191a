import { SingleBar } from 'cli-progress';

/**
 * The training progress bar: steps, smoothed loss, throughput, learning rate
 * and time left, on stderr (stdout stays clean for results). Throughput
 * counts training images only, over the last stretch of steps, so an eval
 * pass or a checkpoint save does not drag the figure down for the rest of the
 * run.
 */
export class TrainingProgress {
  private bar?: SingleBar;
  private ema?: number;
  private window: Array<{ t: number; images: number }> = [];

  constructor(enabled: boolean, private readonly label: string) {
    if (enabled) {
      this.bar = new SingleBar(
        {
          format: `${label} |{bar}| {value}/{total} steps | epoch {epoch} | loss {loss} | {ips} img/s | lr {lr} | eta {eta_formatted}{eval}`,
          barsize: 24,
          hideCursor: true,
          stream: process.stderr,
          etaBuffer: 50,
          fps: 5,
        },
      );
    }
  }

  start(total: number, done: number): void {
    this.bar?.start(total, done, { loss: '-', ips: '-', lr: '-', epoch: 0, eval: '' });
  }

  /** Records one step; returns the current throughput in images per second. */
  step(step: number, epoch: number, loss: number, lr: number, images: number): number {
    this.ema = this.ema === undefined || !Number.isFinite(this.ema) ? loss : 0.9 * this.ema + 0.1 * loss;
    const now = performance.now();
    this.window.push({ t: now, images });
    if (this.window.length > 50) this.window.shift();
    const first = this.window[0];
    const span = (now - first.t) / 1000;
    const counted = this.window.slice(1).reduce((a, w) => a + w.images, 0);
    const ips = span > 0 ? counted / span : 0;
    this.bar?.update(step, { loss: this.ema.toPrecision(4), ips: ips >= 10 ? ips.toFixed(0) : ips > 0 ? ips.toPrecision(2) : '-', lr: lr.toExponential(2), epoch });
    return ips;
  }

  /** Shows the latest evaluation at the end of the bar. */
  evaluated(e: { loss: number; accuracy?: number; psnr?: number }): void {
    const what = e.accuracy !== undefined ? `acc ${(100 * e.accuracy).toFixed(1)}%` : e.psnr !== undefined ? `psnr ${e.psnr.toFixed(2)} dB` : `loss ${e.loss.toPrecision(4)}`;
    this.bar?.update({ eval: ` | eval ${what}` });
  }

  /** A pause the throughput should not count (eval, checkpoint). */
  pause(): void {
    this.window = [];
  }

  stop(): void {
    this.bar?.stop();
  }
}
