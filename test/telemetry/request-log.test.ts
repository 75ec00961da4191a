import { spawnSync } from 'node:child_process';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/server/config';
import { apiKeyId } from '../../src/telemetry/request-log';
import { TestServer, call, logObjects, postImage, startTestServer, testImage } from '../server/harness';
import { jqPrograms, runbookSections } from '../deploy/support/runbook';

/**
 * The request log and traces on a live server: every image is flagged
 * (threshold 0), two API keys are configured, the loopback address is the
 * trusted proxy, and an OTLP/HTTP (JSON) receiver on loopback collects the spans.
 */

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
}

const KEY_A = 'alpha-key-0123456789';
const KEY_B = 'bravo-key-0123456789';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('request log, flagged-by-key metric and OpenTelemetry spans', () => {
  let s: TestServer;
  let receiver: Server;
  const spans: OtlpSpan[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const payload = JSON.parse(body);
          for (const rs of payload.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    s = await startTestServer(
      {
        S2S_API_KEYS: `${KEY_A},${KEY_B}`,
        S2S_TRUST_PROXY: '127.0.0.1/32,::1',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
      { threshold: 0 },
    );
  });
  afterAll(async () => {
    await s.close();
    await new Promise((r) => receiver.close(r));
  });

  it('logs one line per request with client, key id, model, verdicts, status and trace id; counts the flagged request by key', async () => {
    const img = await testImage('png', 28, 1, 3);
    const r = await postImage(`${s.url}/v1/classify`, img, 'image/png', {
      authorization: `Bearer ${KEY_A}`,
      'x-forwarded-for': '203.0.113.7',
      traceparent: `00-${TRACE}-${CALLER_SPAN}-01`,
      'x-request-id': 'req-log-test-1',
    });
    expect(r.status).toBe(200);
    const body = r.json();
    const score = body.results[0].detection.score as number;

    await new Promise((res) => setTimeout(res, 200));
    const lines = logObjects(s).filter((l) => l.msg === 'request completed' && l.reqId === 'req-log-test-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      route: '/v1/classify',
      remoteAddress: '203.0.113.7',
      apiKeyId: apiKeyId(KEY_A),
      model: s.set.manifest.name,
      version: s.set.manifest.version,
      images: 1,
      flagged: 1,
      status: 200,
      traceId: TRACE,
    });
    expect(lines[0].maxScore).toBeCloseTo(score, 4);
    expect(typeof lines[0].ms).toBe('number');
    // The key itself appears nowhere in the log.
    expect(s.logs.join('\n')).not.toContain(KEY_A);

    const metrics = (await call(`${s.url}/metrics`)).body.toString();
    expect(metrics).toContain(`s2s_flagged_requests_total{api_key_id="${apiKeyId(KEY_A)}"} 1`);
    expect(metrics).toContain(`s2s_flagged_requests_total{api_key_id="${apiKeyId(KEY_B)}"} 0`);
  });

  it("the runbook's detection-spike queries find the flagged request in this server's log, with its client and key", async () => {
    // Another completed request, with the other key, that flagged nothing: the queries must leave it out.
    await call(`${s.url}/v1/models/none`, { headers: { authorization: `Bearer ${KEY_B}` } });
    await new Promise((res) => setTimeout(res, 200));
    const [flaggedQuery, perClient] = jqPrograms(runbookSections().get('s2sdetectionratespike')!);
    const jq = (q: { flags: string; program: string }) => {
      const r = spawnSync('jq', [q.flags, q.program], { input: s.logs.join('\n') + '\n', encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return r.stdout.trim().split('\n').filter(Boolean);
    };
    const found = jq(flaggedQuery).map((l) => JSON.parse(l));
    expect(found).toEqual([expect.objectContaining({ reqId: 'req-log-test-1', remoteAddress: '203.0.113.7', apiKeyId: apiKeyId(KEY_A), flagged: 1, traceId: TRACE })]);
    expect(jq(perClient)).toEqual([`${apiKeyId(KEY_A)} 203.0.113.7`]);
  });

  it('exports the request span as a child of the caller, with decode, queue, inference and response spans inside it', async () => {
    for (let i = 0; i < 50 && !['decode', 'queue', 'inference', 'response'].every((n) => spans.some((x) => x.name === n)); i++) {
      await new Promise((res) => setTimeout(res, 100));
    }
    const ours = spans.filter((x) => x.traceId === TRACE);
    const server = ours.find((x) => x.name === 'POST /v1/classify');
    expect(server).toBeDefined();
    expect(server!.parentSpanId).toBe(CALLER_SPAN);
    for (const name of ['decode', 'queue', 'inference', 'response']) {
      const child = ours.find((x) => x.name === name);
      expect(child).toBeDefined();
      expect(child!.parentSpanId).toBe(server!.spanId);
      expect(BigInt(child!.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(server!.startTimeUnixNano));
      expect(BigInt(child!.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(server!.endTimeUnixNano));
    }
  });
});

describe('S2S_TRUST_PROXY', () => {
  it('takes false, true, or a checked list of addresses and CIDRs', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ S2S_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ S2S_TRUST_PROXY: '10.0.0.0/8, 192.168.1.5,fd00::/8' }).trustProxy).toEqual(['10.0.0.0/8', '192.168.1.5', 'fd00::/8']);
    expect(() => loadConfig({ S2S_TRUST_PROXY: '10.0.0.0/33' })).toThrow("S2S_TRUST_PROXY must be true, false or comma-separated addresses/CIDRs, got '10.0.0.0/33'");
    expect(() => loadConfig({ S2S_TRUST_PROXY: 'ingress.local' })).toThrow(/got 'ingress.local'/);
  });
});
