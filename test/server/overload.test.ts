import { request as httpRequest } from 'node:http';
import { call, postImage, spawnServer, testImage } from './harness';
import { writeTinySet } from '../models/tiny-set';

/**
 * Overload and hostile bodies against the real service (no timings asserted;
 * bench/load.ts measures them): a flood on more connections than the cap and
 * more images than the queue gets 200s and 503s with Retry-After, never a
 * connection error; a body nested millions deep gets its 400 while another
 * client's request is answered. The service runs two inference workers, so
 * batches also run side by side.
 */

interface Outcome {
  status?: number;
  retryAfter?: string;
  connection?: string;
  code?: string;
  message?: string;
  error?: string;
}

/** One request on its own new connection (node:http, no pooling), so the connection cap is exercised. */
function once(url: string, path: string, body: Buffer, type: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}${path}`, { method: 'POST', agent: false, headers: { 'content-type': type, 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let code: string | undefined;
        let message: string | undefined;
        try {
          ({ code, error: message } = JSON.parse(Buffer.concat(chunks).toString()));
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], connection: res.headers.connection, code, message });
      });
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end(body);
  });
}

describe('overload and hostile bodies', () => {
  const set = writeTinySet({ channels: 3, size: 64, width: 32 });
  const s = spawnServer({ S2S_QUEUE_LIMIT: '8', S2S_MAX_BATCH: '2', S2S_INFERENCE_WORKERS: '2', S2S_MAX_CONNECTIONS: '48', S2S_BODY_LIMIT: String(12 << 20) }, set.modelsDir, set.manifest.name);
  let png: Buffer;
  beforeAll(async () => {
    await s.ready;
    png = await testImage('png', 64, 3);
  });
  afterAll(() => s.close());

  it('a flood past the connection cap and the queue: 200 or 503 + Retry-After for every request, no connection error', async () => {
    const flood = 160;
    const results = await Promise.all(Array.from({ length: flood }, () => once(s.url, '/v1/classify', png, 'image/png')));
    const errors = results.filter((r) => r.error);
    expect(errors).toEqual([]);
    const statuses = new Set(results.map((r) => r.status));
    expect([...statuses].every((x) => x === 200 || x === 503)).toBe(true);
    const refused = results.filter((r) => r.status === 503);
    expect(refused.every((r) => r.retryAfter === '1')).toBe(true);
    expect(results.some((r) => r.status === 200)).toBe(true);
    // both doors were reached: the queue (full) and the connection cap (which also closes the connection)
    expect(refused.some((r) => r.code === 'queue_full')).toBe(true);
    expect(refused.filter((r) => r.code === 'overloaded').every((r) => r.connection === 'close')).toBe(true);
    expect(refused.some((r) => r.code === 'overloaded')).toBe(true);
    // and the service is whole afterwards
    expect((await postImage(`${s.url}/v1/classify`, png)).status).toBe(200);
    const metrics = (await call(`${s.url}/metrics`)).body.toString();
    expect(metrics).toMatch(/^s2s_event_loop_delay_seconds\{percentile="99"\} [0-9.e-]+$/m);
  });

  it('a body nested millions of levels deep gets 400 naming the limit while a concurrent request is answered', async () => {
    const nested = Buffer.concat([Buffer.from('{"images":'), Buffer.alloc(8 << 20, '[')]);
    const v2nested = Buffer.concat([Buffer.from('{"inputs":'), Buffer.alloc(8 << 20, '[')]);
    const [hostile, v2hostile, legit] = await Promise.all([
      once(s.url, '/v1/classify', nested, 'application/json'),
      once(s.url, `/v2/models/${set.manifest.name}/infer`, v2nested, 'application/json'),
      postImage(`${s.url}/v1/classify`, png),
    ]);
    expect(legit.status).toBe(200);
    expect(hostile).toMatchObject({ status: 400, code: 'bad_input' });
    expect(v2hostile).toMatchObject({ status: 400 });
    const r = await call(`${s.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: nested.subarray(0, 4096) });
    expect(r.json().error).toBe('JSON nested deeper than 4 levels (the limit for this route)');
  });

  it('a JSON array of a million elements is refused by its length, and a GIF pixel bomb by its header', async () => {
    const wide = Buffer.from(`{"images":[${'0,'.repeat(1_000_000)}0]}`);
    const r = await call(`${s.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: wide });
    expect([r.status, r.json().error]).toEqual([400, 'JSON array with more than 64 elements (the limit for this route)']);
    const bomb = await import('node:fs').then((fs) => fs.readFileSync(`${__dirname}/../fixtures/malformed/pixel-bomb.gif`));
    const [b, legit] = await Promise.all([postImage(`${s.url}/v1/classify`, bomb, 'image/gif'), postImage(`${s.url}/v1/classify`, png)]);
    expect([b.status, b.json().error]).toEqual([413, 'image is 4000×4000 = 16000000 pixels; the limit is 2097152 for GIF and TIFF']);
    expect(legit.status).toBe(200);
  });

  describe('with a wait budget far below one batch', () => {
    // a 1 ms budget: once a batch has been measured, a handful of queued images is over it, while
    // the queue (1000 images) never fills — so every 503 here is the wait budget's, not the queue limit's
    const w = spawnServer({ S2S_QUEUE_LIMIT: '1000', S2S_MAX_BATCH: '2', S2S_MAX_QUEUE_WAIT_MS: '1' }, set.modelsDir, set.manifest.name);
    beforeAll(() => w.ready);
    afterAll(() => w.close());

    it('refuses with 503 + Retry-After naming the expected wait, before the queue is full', async () => {
      expect((await postImage(`${w.url}/v1/classify`, png)).status).toBe(200); // measures the drain rate
      const results = await Promise.all(Array.from({ length: 64 }, () => once(w.url, '/v1/classify', png, 'image/png')));
      expect(results.filter((r) => r.error)).toEqual([]);
      expect(results.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      const refused = results.filter((r) => r.status === 503);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((r) => r.retryAfter === '1' && r.code === 'queue_full')).toBe(true);
      expect(refused.every((r) => /^queue too slow \(\d+ images waiting, expected wait \d+ ms over the 1 ms budget\); retry shortly$/.test(r.message ?? ''))).toBe(true);
      expect((await call(`${w.url}/metrics`)).body.toString()).toMatch(/^s2s_rejections_total\{reason="queue_full"[^}]*\} [1-9]/m);
    });
  });
});
