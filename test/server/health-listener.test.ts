import { request as httpRequest } from 'node:http';
import { Socket, connect } from 'node:net';
import { TestServer, call, logObjects, spawnServer, startTestServer, testImage, postImage } from './harness';
import { writeTinySet } from '../models/tiny-set';

/**
 * S2S_HEALTH_PORT: probes and /metrics on a listener of their own. With the
 * traffic listener past its connection cap (new connections reset there),
 * the health listener still answers; it knows no auth, rate limit or
 * admission; on SIGTERM its readiness turns 503 with the traffic port's and
 * it closes last. No timings asserted (bench/load.ts measures them).
 */

const KEY = 'health-listener-test-key-0123456789';

function healthUrl(s: TestServer): string {
  const ready = logObjects(s).find((l) => l.msg === 'ready');
  if (typeof ready?.health !== 'string') throw new Error('the ready line names no health listener');
  return ready.health;
}

/** GET on a new connection of its own (no pooling): what a kubelet probe does. */
function probe(url: string): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

describe('health listener (S2S_HEALTH_PORT)', () => {
  describe('beside a traffic listener at its connection cap, with auth and a rate limit', () => {
    const set = writeTinySet();
    // cap 2: Node resets new traffic connections once 4 × 2 are open
    const s = spawnServer({ S2S_HEALTH_PORT: '0', S2S_MAX_CONNECTIONS: '2', S2S_API_KEYS: KEY, S2S_RATE_LIMIT: '1/1m' }, set.modelsDir, set.manifest.name);
    const held: Socket[] = [];
    beforeAll(() => s.ready);
    afterAll(async () => {
      for (const socket of held) socket.destroy();
      await s.close();
    });

    it('the ready line names both listeners, on different ports', () => {
      expect(new URL(healthUrl(s)).port).not.toBe(new URL(s.url).port);
    });

    it('a probe on the traffic port is reset while every probe on the health port is answered', async () => {
      const { port } = new URL(s.url);
      // 12 silent connections: 8 are held open (4 × the cap), the other 4 are reset by the server
      const closedByServer: Array<Promise<void>> = [];
      for (let i = 0; i < 12; i++) {
        const socket = connect(Number(port), '127.0.0.1');
        socket.on('error', () => undefined);
        closedByServer.push(new Promise((r) => socket.once('close', () => r())));
        held.push(socket);
      }
      // once the server has reset the excess, the traffic listener is full for certain
      let refused = 0;
      for (const p of closedByServer) void p.then(() => refused++);
      while (refused < 4) await new Promise((r) => setTimeout(r, 10));

      const main = await probe(`${s.url}/v2/health/live`);
      expect(main.status).toBeUndefined();
      expect(main.error).toBeDefined();

      const health = healthUrl(s);
      expect(await probe(`${health}/v2/health/live`)).toEqual({ status: 200, body: JSON.stringify({ live: true }) });
      expect(await probe(`${health}/v2/health/ready`)).toEqual({ status: 200, body: JSON.stringify({ ready: true }) });
      const metrics = await probe(`${health}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toMatch(/^s2s_ready 1$/m);
    });

    it('needs no API key, is not rate limited, and serves nothing but probes and /metrics', async () => {
      for (const socket of held.splice(0)) socket.destroy();
      const health = healthUrl(s);
      // the traffic port does ask for a key (and counts the refusal)
      const png = await testImage();
      expect((await postImage(`${s.url}/v1/classify`, png)).status).toBe(401);
      // well past the rate limit of 1 per minute, without a key
      for (let i = 0; i < 5; i++) {
        for (const path of ['/v2/health/live', '/v2/health/ready', '/metrics']) expect([path, (await call(`${health}${path}`)).status]).toEqual([path, 200]);
      }
      expect((await call(`${health}/v1/classify`, { method: 'POST', headers: { 'content-type': 'image/png', authorization: `Bearer ${KEY}` }, body: png })).status).toBe(404);
      const metrics = (await call(`${health}/metrics`)).body.toString();
      expect(metrics).toMatch(/^s2s_rejections_total\{reason="rate_limited"\} 0$/m);
      expect(metrics).toMatch(/^s2s_rejections_total\{reason="unauthorized"\} 1$/m);
      // probes on the health listener are not counted as traffic
      expect(metrics).not.toMatch(/route="\/v2\/health\/live"/);
    });
  });

  it('on SIGTERM: readiness 503 on the health listener too, liveness 200 through the drain, and it closes last', async () => {
    const s = await startTestServer({ S2S_HEALTH_PORT: '0', S2S_DRAIN_MS: '1500', LOG_LEVEL: 'debug' });
    const health = healthUrl(s);
    expect((await probe(`${health}/v2/health/ready`)).status).toBe(200);
    // a request in flight on the traffic port, its body half sent, holds that listener's close open until the test sends the rest
    const slow = connect(Number(new URL(s.url).port), '127.0.0.1');
    slow.on('error', () => undefined);
    await new Promise((r) => slow.once('connect', r));
    slow.write('POST /v1/classify HTTP/1.1\r\nhost: x\r\ncontent-type: image/png\r\ncontent-length: 10\r\n\r\n12345');
    let slowReply = '';
    slow.on('data', (d) => (slowReply += d.toString('latin1')));
    try {
      s.child.kill('SIGTERM');
      while (!logObjects(s).some((l) => l.msg === 'draining: readiness is 503, still serving')) await new Promise((r) => setTimeout(r, 5));
      expect(await probe(`${health}/v2/health/ready`)).toEqual({ status: 503, body: JSON.stringify({ ready: false }) });
      expect(await probe(`${health}/v2/health/live`)).toEqual({ status: 200, body: JSON.stringify({ live: true }) });
      // the traffic listener closes (new connections refused) while the health listener still answers
      while (!logObjects(s).some((l) => l.msg === 'closing: no new connections; finishing in-flight requests')) await new Promise((r) => setTimeout(r, 5));
      // (a connection racing the close may be reset rather than refused)
      while ((await probe(`${s.url}/v2/health/live`)).error !== 'ECONNREFUSED') await new Promise((r) => setTimeout(r, 5));
      expect(await probe(`${health}/v2/health/ready`)).toEqual({ status: 503, body: JSON.stringify({ ready: false }) });
      expect(await probe(`${health}/v2/health/live`)).toEqual({ status: 200, body: JSON.stringify({ live: true }) });
      slow.write('67890');
      expect(await s.exited).toBe(0);
      expect(slowReply).toMatch(/^HTTP\/1\.1 4\d\d /);
    } finally {
      // a failed expectation must not leave the service (held open by the half-sent request) running
      slow.destroy();
      if (s.child.exitCode === null) s.child.kill('SIGKILL');
    }
    expect((await probe(`${health}/v2/health/live`)).error).toBe('ECONNREFUSED');
  });
});
