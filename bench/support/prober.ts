import { Sample, probe } from '../load-clients';

/**
 * Liveness probes in a process of their own, as the kubelet is: probes run
 * inside the load generator measure its event loop too (under a 1,024-
 * connection flood its own delay p99 reaches 200 ms), not the service's.
 * bench/load.ts forks it before lowering its clients' priority, so it runs
 * at the service's priority.
 *
 * Messages in: { start: [{ key, url, fresh }], intervalMs } then { stop: true };
 * out: { samples: { [key]: Sample[] } } once stopped.
 */

interface Start {
  start: Array<{ key: string; url: string; fresh: boolean }>;
  intervalMs: number;
}

let stopping = false;
let running: Promise<Array<[string, Sample[]]>> | undefined;

process.on('message', (m: Start | { stop: true }) => {
  if ('start' in m) {
    stopping = false;
    running = Promise.all(m.start.map(async (t) => [t.key, await probe({ url: t.url, path: '/v2/health/live' }, m.intervalMs, () => stopping, t.fresh)] as [string, Sample[]]));
  } else {
    stopping = true;
    void running?.then((pairs) => process.send!({ samples: Object.fromEntries(pairs) }));
  }
});
