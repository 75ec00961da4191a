import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, call, expectConforms, logObjects, multipart, startTestServer } from '../harness';

/**
 * test/fixtures/malformed/v2-cases.json against POST /v2/models/{name}/infer:
 * whatever the body (an image, multipart, garbage, hostile JSON, a broken
 * binary framing), a 4xx with {"error": …}, never a 5xx.
 */

interface Case {
  name: string;
  send: 'raw' | 'none' | 'multipart' | 'text' | 'json';
  file?: string;
  parts?: string[];
  repeatTo?: number;
  contentType?: string;
  text?: string;
  json?: unknown;
  headerLength?: string;
  status: number;
}

const dir = join(__dirname, '..', '..', 'fixtures', 'malformed');
const { cases } = JSON.parse(readFileSync(join(dir, 'v2-cases.json'), 'utf8')) as { cases: Case[] };

function bytes(file: string, repeatTo?: number): Buffer {
  const b = readFileSync(join(dir, file));
  if (!repeatTo) return b;
  return Buffer.concat(Array.from({ length: Math.ceil(repeatTo / b.length) }, () => b)).subarray(0, repeatTo);
}

function request(c: Case): { headers: Record<string, string>; body?: Buffer } {
  const headers: Record<string, string> = c.contentType ? { 'content-type': c.contentType } : {};
  if (c.headerLength) headers['inference-header-content-length'] = c.headerLength;
  switch (c.send) {
    case 'none':
      return { headers };
    case 'raw':
      return { headers, body: bytes(c.file!, c.repeatTo) };
    case 'text':
      return { headers, body: Buffer.from(c.text!) };
    case 'json':
      return { headers, body: Buffer.from(JSON.stringify(c.json)) };
    case 'multipart': {
      const mp = multipart(c.parts!.map((f) => ({ bytes: bytes(f), filename: f })));
      return { headers: { ...headers, 'content-type': mp.contentType }, body: mp.body };
    }
  }
}

describe('malformed V2 infer bodies (test/fixtures/malformed/v2-cases.json)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ S2S_MAX_PARTS: '3', S2S_BODY_LIMIT: '262144' });
  });
  afterAll(() => s.close());

  it.each(cases.map((c) => [c.name, c] as const))('%s: 4xx with {"error": …}, and the service still answers', async (_name, c) => {
    const { headers, body } = request(c);
    const r = await call(`${s.url}/v2/models/tiny/infer`, { method: 'POST', headers, body });
    expect([r.status, r.body.toString().slice(0, 200)]).toEqual([c.status, expect.any(String)]);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expectConforms('modelInfer', c.status, r.json());
    expect(r.json().error.length).toBeGreaterThan(5);
    expect((await call(`${s.url}/v2/health/live`)).status).toBe(200);
  });

  it('after the whole corpus: no 5xx was ever answered', async () => {
    const completed = () => logObjects(s).filter((l) => l.msg === 'request completed' && String(l.url).startsWith('/v2/models')).map((l) => l.status as number);
    // the log lines come through the child's stdout and may trail the responses a little
    for (let i = 0; i < 100 && completed().length < cases.length; i++) await new Promise((r) => setTimeout(r, 50));
    const statuses = completed();
    expect(statuses.length).toBe(cases.length);
    expect(statuses.filter((x) => x >= 500)).toEqual([]);
  });
});
