import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, call, expectConforms, logObjects, multipart, postImage, startTestServer, testImage } from './harness';

interface Case {
  name: string;
  send: 'raw' | 'none' | 'multipart' | 'rawMultipart' | 'text' | 'json';
  file?: string;
  parts?: string[];
  partName?: string;
  repeatTo?: number;
  contentType?: string;
  text?: string;
  json?: unknown;
  query?: string;
  status: number;
  /** text the error message must contain (it names the limit) */
  error?: string;
}

const dir = join(__dirname, '..', 'fixtures', 'malformed');
const { cases } = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as { cases: Case[] };

function bytes(file: string, repeatTo?: number): Buffer {
  const b = readFileSync(join(dir, file));
  if (!repeatTo) return b;
  return Buffer.concat(Array.from({ length: Math.ceil(repeatTo / b.length) }, () => b)).subarray(0, repeatTo);
}

function request(c: Case): { headers: Record<string, string>; body?: Buffer } {
  switch (c.send) {
    case 'none':
      return { headers: {} };
    case 'raw':
      return { headers: { 'content-type': c.contentType! }, body: bytes(c.file!, c.repeatTo) };
    case 'multipart': {
      const mp = multipart(c.parts!.map((f, i) => ({ bytes: bytes(f, c.repeatTo), name: c.partName, filename: f, type: i % 2 ? 'application/octet-stream' : 'image/png' })));
      return { headers: { 'content-type': mp.contentType }, body: mp.body };
    }
    case 'rawMultipart':
    case 'text':
      return { headers: { 'content-type': c.contentType! }, body: Buffer.from(c.text!) };
    case 'json':
      return { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(c.json)) };
  }
}

describe('malformed input corpus (test/fixtures/malformed)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ S2S_MAX_PARTS: '3', S2S_BODY_LIMIT: '262144' });
  });
  afterAll(() => s.close());

  it.each(cases.map((c) => [c.name, c] as const))('%s: 4xx with a JSON error, and the service still answers', async (_name, c) => {
    const { headers, body } = request(c);
    const r = await call(`${s.url}/v1/classify${c.query ? `?${c.query}` : ''}`, { method: 'POST', headers, body });
    expect(r.status).toBe(c.status);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    const err = r.json();
    expectConforms('classify', c.status, err);
    expect(err.error.length).toBeGreaterThan(5);
    if (c.error) expect(err.error).toContain(c.error);
    expect(err.requestId).toBe(r.headers['x-request-id']);
    expect((await call(`${s.url}/v2/health/live`)).status).toBe(200);
  });

  it('after the whole corpus: still classifies, never answered 5xx, never logged image bytes', async () => {
    const ok = await postImage(`${s.url}/v1/classify`, await testImage());
    expect(ok.status).toBe(200);
    const logs = logObjects(s);
    const statuses = logs.filter((l) => l.msg === 'request completed').map((l) => l.status as number);
    expect(statuses.length).toBeGreaterThanOrEqual(cases.length);
    expect(statuses.filter((x) => x >= 500)).toEqual([]);
    const text = s.logs.join('\n');
    // base64 of the corpus PNG and the raw PNG signature must not appear in logs
    expect(text).not.toContain(readFileSync(join(dir, 'valid.png')).toString('base64').slice(0, 40));
    expect(text).not.toContain('\\u0089PNG');
    expect(text).not.toContain('iVBORw0KGgo');
  });
});
