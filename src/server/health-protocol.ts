/**
 * What the main thread and the health listener's thread share: one
 * SharedArrayBuffer holding readiness (set by the Lifecycle) and the main
 * event loop's heartbeat (process.hrtime, monotonic and the same clock in
 * every thread), plus the messages for starting, scraping and closing.
 */

/** How often the main event loop writes its heartbeat. */
export const HEARTBEAT_MS = 100;
/** How long a scrape on the health listener waits for the main thread to render the metrics. */
export const METRICS_TIMEOUT_MS = 10_000;

export class HealthShared {
  private readonly readyFlag: Int32Array;
  private readonly beat: BigInt64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.readyFlag = new Int32Array(buffer, 0, 1);
    this.beat = new BigInt64Array(buffer, 8, 1);
  }

  setReady(ready: boolean): void {
    Atomics.store(this.readyFlag, 0, ready ? 1 : 0);
  }
  get ready(): boolean {
    return Atomics.load(this.readyFlag, 0) === 1;
  }
  heartbeat(): void {
    Atomics.store(this.beat, 0, process.hrtime.bigint());
  }
  /** milliseconds since the main event loop last wrote its heartbeat */
  sinceHeartbeatMs(): number {
    return Number(process.hrtime.bigint() - Atomics.load(this.beat, 0)) / 1e6;
  }
}

/** Alive: the main event loop has turned within the stall limit. */
export function isLive(s: HealthShared, stallMs: number): boolean {
  return s.sinceHeartbeatMs() < stallMs;
}

/** Ready: the Lifecycle says so (not starting, not draining) and the process is alive. */
export function isReady(s: HealthShared, stallMs: number): boolean {
  return s.ready && isLive(s, stallMs);
}

export interface HealthStart {
  host: string;
  port: number;
  maxConnections: number;
  stallMs: number;
  shared: SharedArrayBuffer;
}

export type HealthToMain = { listening: string } | { error: string } | { scrape: number };
export type MainToHealth = { scraped: number; text: string; contentType: string } | { close: true };
