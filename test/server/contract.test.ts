import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIONS, loadConfig } from '../../src/server/config';
import { loadOpenApi } from '../../src/server/openapi';
import { TestServer, call, startTestServer } from './harness';

const ROOT = join(__dirname, '..', '..');

describe('openapi.yaml is the contract', () => {
  it('passes redocly lint', () => {
    const r = spawnSync(process.execPath, [require.resolve('@redocly/cli/lib/index.js'), 'lint', 'openapi.yaml', '--format', 'stylish'], { cwd: ROOT, encoding: 'utf8' });
    expect({ status: r.status, out: r.status === 0 ? '' : `${r.stdout}${r.stderr}` }).toEqual({ status: 0, out: '' });
  });

  describe('on a live server', () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer();
    });
    afterAll(() => s.close());

    it('routes every operation it describes', async () => {
      const doc = loadOpenApi();
      const ops = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => ({ path, method })));
      expect(ops.length).toBe(17);
      for (const { path, method } of ops) {
        const r = await call(`${s.url}${path.replace('{name}', 'tiny').replace('{version}', '0.0.1-test')}`, { method: method.toUpperCase(), ...(method === 'post' ? { body: '' } : {}) });
        const body = r.headers['content-type']?.toString().startsWith('application/json') ? r.json() : {};
        expect([method, path, body.code === 'not_found' && /no route/.test(body.error)]).toEqual([method, path, false]);
      }
    });

    it('serves /docs from the same document', async () => {
      const html = await call(`${s.url}/docs`);
      expect(html.status).toBe(200);
      expect(html.headers['content-type']).toMatch(/text\/html/);
      const json = (await call(`${s.url}/docs/json`)).json();
      expect(Object.keys(json.paths).sort()).toEqual(Object.keys(loadOpenApi().paths).sort());
    });

    it('answers unknown routes with a JSON 404', async () => {
      const r = await call(`${s.url}/v1/nothing`);
      expect(r.status).toBe(404);
      expect(r.json()).toMatchObject({ code: 'not_found', error: 'no route GET /v1/nothing' });
    });
  });
});

describe('configuration', () => {
  const table = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8')
    .split('\n')
    .filter((l) => /^\| `[A-Z0-9_]+` \|/.test(l))
    .map((l) => l.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|')));

  it('docs/configuration.md lists exactly the options, with their flags and defaults', () => {
    expect(table.map((r) => r[1].replace(/`/g, ''))).toEqual(OPTIONS.map((o) => o.env));
    for (const o of OPTIONS) {
      const row = table.find((r) => r[1] === `\`${o.env}\``)!;
      expect([o.env, row[2]]).toEqual([o.env, o.flag ? `\`${o.flag} <${o.arg}>\`` : '—']);
      expect([o.env, row[3].replace(/`/g, '')]).toEqual([o.env, o.default.replace(/`/g, '')]);
    }
  });

  it('documented defaults are the defaults', () => {
    const c = loadConfig({}, {});
    const dflt = (env: string) => OPTIONS.find((o) => o.env === env)!.default;
    expect(String(c.port)).toBe(dflt('PORT'));
    expect(c.host).toBe(dflt('HOST'));
    expect(c.modelsDir).toBe(join(ROOT, 'models'));
    expect(c.model).toBe(dflt('S2S_MODEL'));
    expect(c.provider).toBe(dflt('S2S_PROVIDER'));
    for (const [key, env] of [['threads', 'S2S_THREADS'], ['inferenceNice', 'S2S_INFERENCE_NICE'], ['maxBatch', 'S2S_MAX_BATCH'], ['maxDelayMs', 'S2S_MAX_DELAY_MS'], ['queueLimit', 'S2S_QUEUE_LIMIT'], ['requestTimeoutMs', 'S2S_REQUEST_TIMEOUT_MS'], ['maxEventLoopDelayMs', 'S2S_MAX_EVENT_LOOP_DELAY_MS'], ['drainMs', 'S2S_DRAIN_MS'], ['bodyLimit', 'S2S_BODY_LIMIT'], ['maxPixels', 'S2S_MAX_PIXELS'], ['maxParts', 'S2S_MAX_PARTS']] as const) {
      expect([env, String(c[key])]).toEqual([env, dflt(env)]);
    }
    expect(c.detectionPolicy).toBe(dflt('S2S_DETECTION_POLICY'));
    expect(c.logLevel).toBe(dflt('LOG_LEVEL'));
    expect(String(c.logSync)).toBe(dflt('LOG_SYNC'));
    expect(loadConfig({ LOG_SYNC: 'true' }, {}).logSync).toBe(true);
    expect([c.apiKeys, c.rateLimit, c.noise, c.noiseMax, c.noiseKind, c.trustProxy]).toEqual([[], undefined, undefined, undefined, undefined, false]);
    // σ of certification is left to each set (its smoothing denoiser's σ) unless the operator names one
    expect(c.certify.sigma).toBeUndefined();
  });

  it('flags win over the environment; bad values name the variable or flag', () => {
    expect(loadConfig({ PORT: '9000' }, { port: '9001' }).port).toBe(9001);
    expect(loadConfig({ S2S_RATE_LIMIT: '600/1m' }, {}).rateLimit).toEqual({ max: 600, windowMs: 60000 });
    expect(loadConfig({ S2S_RATE_LIMIT: '20/second' }, {}).rateLimit).toEqual({ max: 20, windowMs: 1000 });
    expect(() => loadConfig({ PORT: 'eighty' }, {})).toThrow(/^PORT must be a whole number/);
    expect(() => loadConfig({}, { maxBatch: '0' })).toThrow(/^--max-batch must be between 1 and/);
    expect(() => loadConfig({ S2S_PROVIDER: 'tpu' }, {})).toThrow(/^S2S_PROVIDER must be one of auto, cpu, cuda/);
    expect(() => loadConfig({ S2S_NOISE: '2' }, {})).toThrow(/^S2S_NOISE must be a number between 0 and 1/);
    expect(() => loadConfig({ S2S_RATE_LIMIT: 'lots' }, {})).toThrow(/^S2S_RATE_LIMIT must look like/);
    expect(() => loadConfig({ S2S_API_KEYS: 'short' }, {})).toThrow(/at least 16 characters/);
  });
});
