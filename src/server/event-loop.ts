import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, Registry } from 'prom-client';

const RESOLUTION_MS = 1;
const PERCENTILES = [50, 99, 100] as const;

/**
 * `s2s_event_loop_delay_seconds{percentile}`: how late the event loop ran a
 * 1 ms timer, at the median, p99 and worst, over the window since the
 * previous scrape (the histogram restarts at each scrape). Inference runs on
 * worker threads, so this stays near zero under load; when it grows, parsing,
 * decoding bookkeeping or answering is what holds the loop.
 */
export function watchEventLoopDelay(registry: Registry): () => void {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  // Each sample is the timer's whole interval; the delay is what exceeds the resolution.
  const delay = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1000;
  new Gauge({
    name: 's2s_event_loop_delay_seconds',
    help: 'Event-loop delay since the previous scrape, at percentile 50, 99 and 100 (the worst).',
    labelNames: ['percentile'] as const,
    registers: [registry],
    collect() {
      for (const p of PERCENTILES) this.set({ percentile: String(p) }, h.count > 0 ? delay(p === 100 ? h.max : h.percentile(p)) : 0);
      h.reset();
    },
  });
  return () => h.disable();
}
