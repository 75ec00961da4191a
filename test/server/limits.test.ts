import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { errorsPlugin } from '../../src/server/errors';
import { loadSheddingPlugin } from '../../src/server/limits';
import { Metrics } from '../../src/server/metrics';
import { call, expectConforms, multipart, postImage, startTestServer, testImage } from './harness';

const KEY_A = 'key-aaaaaaaaaaaaaaaaaaaa-1';
const KEY_B = 'key-bbbbbbbbbbbbbbbbbbbb-2';
const KEY_C = 'key-cccccccccccccccccccc-3';

describe('API-key auth', () => {
  it('requires a configured key on the API, not on probes, metrics or /docs; keys never reach the log', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 's2s-keys-')), 'keys');
    writeFileSync(file, `# issued 2026-11\n${KEY_C}\n\n`);
    const s = await startTestServer({ S2S_API_KEYS: `${KEY_A},${KEY_B}`, S2S_API_KEYS_FILE: file });
    try {
      const png = await testImage();
      const none = await postImage(`${s.url}/v1/classify`, png);
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expectConforms('classify', 401, none.json());
      expect(none.json().error).toMatch(/API key required/);
      const wrong = await postImage(`${s.url}/v1/classify`, png, 'image/png', { authorization: `Bearer ${KEY_A}x` });
      expect([wrong.status, wrong.json().error]).toEqual([401, 'invalid API key']);
      expect((await postImage(`${s.url}/v1/classify`, png, 'image/png', { authorization: `Bearer ${KEY_A}` })).status).toBe(200);
      expect((await postImage(`${s.url}/v1/classify`, png, 'image/png', { 'x-api-key': KEY_B })).status).toBe(200);
      expect((await postImage(`${s.url}/v1/classify`, png, 'image/png', { 'x-api-key': KEY_C })).status).toBe(200);
      expect((await call(`${s.url}/v2/models/tiny`)).status).toBe(401);
      for (const open of ['/v2/health/live', '/v2/health/ready', '/metrics', '/docs/json']) expect([open, (await call(`${s.url}${open}`)).status]).toEqual([open, 200]);
      const metrics = (await call(`${s.url}/metrics`)).body.toString();
      expect(metrics).toMatch(/^s2s_rejections_total\{reason="unauthorized"\} 3$/m);
      const logs = s.logs.join('\n');
      for (const k of [KEY_A, KEY_B, KEY_C]) expect(logs).not.toContain(k);
    } finally {
      await s.close();
    }
  });

  it('refuses to start with a keys file that holds no key', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 's2s-keys-')), 'keys');
    writeFileSync(file, '# nothing yet\n');
    await expect(startTestServer({ S2S_API_KEYS_FILE: file })).rejects.toThrow(/holds no keys; refusing to start with auth silently off/);
  });
});

describe('rate limit', () => {
  it('answers 429 with Retry-After over the limit, per key; probes are never limited', async () => {
    const s = await startTestServer({ S2S_RATE_LIMIT: '2/1m', S2S_API_KEYS: `${KEY_A},${KEY_B}` });
    try {
      const png = await testImage();
      const as = async (key: string) => postImage(`${s.url}/v1/classify`, png, 'image/png', { 'x-api-key': key });
      expect((await as(KEY_A)).status).toBe(200);
      expect((await as(KEY_A)).status).toBe(200);
      const limited = await as(KEY_A);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expectConforms('classify', 429, limited.json());
      expect(limited.json().code).toBe('rate_limited');
      expect((await as(KEY_B)).status).toBe(200);
      for (let i = 0; i < 4; i++) expect((await call(`${s.url}/v2/health/ready`)).status).toBe(200);
      expect((await call(`${s.url}/metrics`)).body.toString()).toMatch(/^s2s_rejections_total\{reason="rate_limited"\} 1$/m);
    } finally {
      await s.close();
    }
  });
});

describe('bounded queue', () => {
  it('a request that does not fit the queue gets 503 with Retry-After at once, and the next one is served', async () => {
    const s = await startTestServer({ S2S_QUEUE_LIMIT: '2', S2S_MAX_PARTS: '4' });
    try {
      const png = await testImage();
      const mp = multipart([png, png, png].map((bytes) => ({ bytes })));
      const r = await call(`${s.url}/v1/classify`, { method: 'POST', headers: { 'content-type': mp.contentType }, body: mp.body });
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('1');
      expectConforms('classify', 503, r.json());
      expect(r.json().code).toBe('queue_full');
      expect((await postImage(`${s.url}/v1/classify`, png)).status).toBe(200);
      expect((await call(`${s.url}/metrics`)).body.toString()).toMatch(/^s2s_rejections_total\{reason="queue_full"\} 1$/m);
    } finally {
      await s.close();
    }
  });
});

describe('load shedding on event-loop delay', () => {
  it('answers 503 overloaded while the loop lags, but never on public routes', async () => {
    const metrics = new Metrics();
    const app = Fastify();
    await app.register(errorsPlugin, { metrics });
    await app.register(loadSheddingPlugin, { maxEventLoopDelayMs: 20, metrics });
    app.get('/work', async () => 'done');
    app.get('/live', { config: { public: true } }, async () => 'alive');
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    let shed: Awaited<ReturnType<typeof call>> | undefined;
    for (let attempt = 0; attempt < 10 && !shed; attempt++) {
      const until = Date.now() + 300;
      while (Date.now() < until); // block the event loop
      await new Promise((r) => setTimeout(r, 12)); // let the sampler see it
      const [live, r] = await Promise.all([call(`${url}/live`), call(`${url}/work`)]);
      expect(live.status).toBe(200);
      if (r.status === 503) shed = r;
    }
    expect(shed).toBeDefined();
    expect(shed!.headers['retry-after']).toBe('1');
    expect(shed!.json().code).toBe('overloaded');
    expect(await metrics.registry.getSingleMetricAsString('s2s_rejections_total')).toMatch(/reason="overloaded"\} [1-9]/);
    await app.close();
  });
});
