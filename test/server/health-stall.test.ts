import { spawnSync } from 'node:child_process';
import pino from 'pino';
import { request } from 'undici';
import { HealthShared, isLive, isReady } from '../../src/server/health-protocol';
import { HealthListener, startHealthListener } from '../../src/server/health-listener';
import { Lifecycle } from '../../src/server/lifecycle';
import { Metrics } from '../../src/server/metrics';

/**
 * The health listener answers from a thread of its own, so it must learn
 * from the main thread whether the process is alive: liveness (and
 * readiness) fail once the main event loop has stopped turning for the stall
 * limit, and come back when it turns again. The main loop is stalled here by
 * spawnSync, whose child probes meanwhile.
 */

/** GET from another process while this thread's event loop is blocked (spawnSync blocks it). */
function probeWhileBlocked(url: string, afterMs: number): { status: number; body: unknown } {
  const script = `setTimeout(() => fetch(${JSON.stringify(url)}).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.json() }))), ${afterMs})`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(r.stdout);
}

describe('health listener: liveness follows the main event loop', () => {
  it('a heartbeat older than the stall limit is not alive, nor ready', async () => {
    const s = new HealthShared();
    s.heartbeat();
    s.setReady(true);
    expect([isLive(s, 1000), isReady(s, 1000)]).toEqual([true, true]);
    await new Promise((r) => setTimeout(r, 30));
    expect([isLive(s, 10), isReady(s, 10)]).toEqual([false, false]);
    s.heartbeat();
    s.setReady(false);
    expect([isLive(s, 1000), isReady(s, 1000)]).toEqual([true, false]);
  });

  describe('in this process', () => {
    const metrics = new Metrics();
    const lifecycle = new Lifecycle(metrics);
    let health: HealthListener;
    beforeAll(async () => {
      health = await startHealthListener({ host: '127.0.0.1', port: 0, lifecycle, metrics, logger: pino({ level: 'silent' }), stallMs: 1500 });
    });
    afterAll(() => health.close());

    // A new connection per probe, as the kubelet makes them: a kept-alive socket could have been closed
    // by the listener's keep-alive timeout while spawnSync held this loop, before undici's timers saw it.
    const get = async (path: string) => {
      const r = await request(`${health.url}${path}`, { reset: true });
      const text = await r.body.text();
      return { status: r.statusCode, text };
    };

    it('readiness follows the Lifecycle: 503 while starting, 200 once ready', async () => {
      expect(await get('/v2/health/ready')).toEqual({ status: 503, text: JSON.stringify({ ready: false }) });
      lifecycle.markReady();
      expect(await get('/v2/health/ready')).toEqual({ status: 200, text: JSON.stringify({ ready: true }) });
      expect(await get('/v2/health/live')).toEqual({ status: 200, text: JSON.stringify({ live: true }) });
      // the main thread renders the scrape
      metrics.images.inc({ model: 'stall-test' }, 3);
      const scraped = await get('/metrics');
      expect(scraped.status).toBe(200);
      expect(scraped.text).toMatch(/^s2s_images_total\{model="stall-test"\} 3$/m);
      expect(scraped.text).toMatch(/^s2s_ready 1$/m);
    });

    it('the main event loop blocked past the stall limit: 503 live and ready; turning again: 200', async () => {
      expect(probeWhileBlocked(`${health.url}/v2/health/live`, 2500)).toEqual({ status: 503, body: { live: false } });
      // (spawnSync returned: the loop turns again at the next heartbeat)
      await new Promise((r) => setTimeout(r, 300));
      expect(await get('/v2/health/live')).toEqual({ status: 200, text: JSON.stringify({ live: true }) });
      expect(probeWhileBlocked(`${health.url}/v2/health/ready`, 2500)).toEqual({ status: 503, body: { ready: false } });
    });

    it('draining: readiness 503, liveness 200', async () => {
      lifecycle.startDraining();
      expect(await get('/v2/health/ready')).toEqual({ status: 503, text: JSON.stringify({ ready: false }) });
      expect(await get('/v2/health/live')).toEqual({ status: 200, text: JSON.stringify({ live: true }) });
    });

    it('answers 404 off its routes and 405 to anything but GET', async () => {
      expect((await get('/v1/classify')).status).toBe(404);
      const post = await request(`${health.url}/v2/health/live`, { method: 'POST', body: '', reset: true });
      await post.body.text();
      expect([post.statusCode, post.headers.allow]).toEqual([405, 'GET, HEAD']);
    });
  });
});
