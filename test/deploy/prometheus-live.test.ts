import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { request } from 'undici';
import YAML from 'yaml';
import { writeTinySet } from '../models/tiny-set';
import { loadDashboard, panelExpressions, variableQueries } from './support/dashboard';
import { loadMetricsDoc } from './support/metrics-doc';
import { Child, freePort, startChild, stopChild, waitFor } from './support/processes';
import { comparisonsAsBool, substituteGrafanaVariables } from './support/promql';
import { ALERTS_PATH, at, PROMETHEUS_CONFIG_PATH, readYaml } from './support/repo';
import { ruleExpressions } from './support/rules';
import { requireTool } from './support/tools';

/**
 * A real Prometheus scraping the real service, so that a renamed metric breaks the build instead of a
 * dashboard in production (issue 7, item 5).
 *
 * 1. Two instances of the built service (`node dist/cli/main.js serve`, as `npm start` runs it) on loopback,
 *    each serving a small model set made by test/models/tiny-set.ts: "tiny" with a threshold no image
 *    reaches (every verdict clean) and "tiny-flagging" with threshold 0 (every image flagged adversarial).
 * 2. Debian's /usr/bin/prometheus, configured from deploy/prometheus/prometheus.yml (scrape and rule
 *    evaluation every second, targets replaced by the two instances, rule_files = alerts.yml).
 * 3. Traffic: images as raw bodies and as JSON, plus bad requests (empty body, wrong type, corrupt PNG,
 *    unknown model) that must get 4xx.
 * 4. After a few more scrapes, every PromQL expression of the dashboard (Grafana variables as "All",
 *    intervals as 30s) and of the alert rules (comparisons made `bool`, so the rule's series come back
 *    whether or not it would fire) must return data from Prometheus's HTTP API.
 *
 * Needs `npm run build` (npm ci runs it) and the Debian `prometheus` package (.ci/run installs it).
 */

const MAIN = at('dist', 'cli', 'main.js');
const MODELS = [
  { name: 'tiny', threshold: 1e6 },
  { name: 'tiny-flagging', threshold: 0 },
];

interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

interface PromResponse {
  status: string;
  error?: string;
  data: { resultType: string; result: Series[] | [number, string] };
}

/** A vector's result is a list of series; a scalar's (time()) is one [timestamp, value] pair. */
const seriesOf = (r: PromResponse): Series[] =>
  r.data.resultType === 'scalar' ? [{ metric: {}, value: r.data.result as [number, string] }] : (r.data.result as Series[]);

let dir = '';
let promUrl = '';
const services: { url: string; model: string; child: Child }[] = [];
let prometheus: Child | undefined;
const children = () => [...services.map((s) => s.child), ...(prometheus ? [prometheus] : [])];

async function query(expr: string): Promise<PromResponse> {
  const res = await request(`${promUrl}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: expr }).toString(),
  });
  return (await res.body.json()) as PromResponse;
}

async function scalar(expr: string): Promise<number> {
  const r = await query(expr);
  if (r.status !== 'success') throw new Error(`${expr}: ${r.error}`);
  const series = seriesOf(r);
  return series.length ? Number(series[0].value[1]) : NaN;
}

async function png(seed: number, noise: boolean): Promise<Buffer> {
  const px = Buffer.alloc(28 * 28);
  for (let i = 0; i < px.length; i++) {
    // A soft gradient, or pseudo-random speckle: different inputs, deterministic bytes.
    px[i] = noise ? (Math.imul(i + 1, 2654435761 + seed * 40503) >>> 24) & 0xff : ((i % 28) * 9 + seed * 7) & 0xff;
  }
  return sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
}

async function send(url: string, method: 'GET' | 'POST', body?: Buffer | string, contentType?: string): Promise<number> {
  const res = await request(url, { method, body, headers: contentType ? { 'content-type': contentType } : {} });
  await res.body.dump();
  return res.statusCode;
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build the service first (\`npm run build\`; \`npm ci\` runs it through prepare)`);
  const prometheusBin = requireTool('prometheus');
  dir = mkdtempSync(join(tmpdir(), 's2s-prom-live-'));

  for (const m of MODELS) {
    const { modelsDir } = writeTinySet({ name: m.name, threshold: m.threshold }, join(dir, `models-${m.name}`));
    const port = await freePort();
    const child = startChild(`s2s serve (${m.name})`, process.execPath, [MAIN, 'serve'], {
      cwd: at(),
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        S2S_MODELS_DIR: modelsDir,
        S2S_MODEL: m.name,
        S2S_PROVIDER: 'cpu',
        S2S_THREADS: '1',
        S2S_DRAIN_MS: '0',
        LOG_LEVEL: 'warn',
      },
    });
    services.push({ url: `http://127.0.0.1:${port}`, model: m.name, child });
  }
  for (const s of services) {
    await waitFor(`${s.url}/v2/health/ready to answer 200`, async () => ((await send(`${s.url}/v2/health/ready`, 'GET')) === 200 ? true : undefined), children());
  }

  // The example config with test timings and these targets; everything else as shipped.
  const config = readYaml<any>(PROMETHEUS_CONFIG_PATH);
  const job = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 's2s');
  if (!job) throw new Error('deploy/prometheus/prometheus.yml has no job "s2s", which the alert rules select');
  config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s' };
  config.rule_files = [ALERTS_PATH];
  // A namespace label, as every Kubernetes scrape (ServiceMonitor or pod discovery) adds: the dashboard's namespace variable lists it.
  job.static_configs = [{ targets: services.map((s) => s.url.replace('http://', '')), labels: { namespace: 'ml' } }];
  writeFileSync(join(dir, 'prometheus.yml'), YAML.stringify(config));
  mkdirSync(join(dir, 'data'));
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  prometheus = startChild('prometheus', prometheusBin, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--log.level=warn',
  ], { cwd: dir });
  await waitFor('Prometheus to be ready', async () => ((await send(`${promUrl}/-/ready`, 'GET')) === 200 ? true : undefined), children());
  // A first scrape of both before the traffic, so that rates see the counters rise.
  await waitFor('both targets scraped', async () => ((await scalar('count(up{job="s2s"} == 1)')) === services.length ? true : undefined), children());

  for (const s of services) {
    for (let i = 0; i < 12; i++) {
      const status = await send(`${s.url}/v1/classify?topK=3`, 'POST', await png(i, i % 2 === 1), 'image/png');
      if (status !== 200) throw new Error(`POST /v1/classify (raw PNG) to ${s.model}: ${status}`);
    }
    for (let i = 0; i < 3; i++) {
      const body = JSON.stringify({ images: [(await png(i, false)).toString('base64'), (await png(i, true)).toString('base64')], topK: 2 });
      const status = await send(`${s.url}/v1/classify`, 'POST', body, 'application/json');
      if (status !== 200) throw new Error(`POST /v1/classify (JSON) to ${s.model}: ${status}`);
    }
    // Certified answers (issue 16), so the certification panels have data too.
    for (let i = 0; i < 2; i++) {
      const status = await send(`${s.url}/v1/certify?n=50`, 'POST', await png(i, false), 'image/png');
      if (status !== 200) throw new Error(`POST /v1/certify to ${s.model}: ${status}`);
    }
    const corrupt = (await png(1, false)).subarray(0, 40);
    const bad: [string, 'GET' | 'POST', (Buffer | string)?, string?][] = [
      ['/v1/classify', 'POST', Buffer.alloc(0), 'image/png'],
      ['/v1/classify', 'POST', 'not an image', 'text/plain'],
      ['/v1/classify', 'POST', corrupt, 'image/png'],
      ['/v1/classify', 'POST', '{"images": []}', 'application/json'],
      ['/v2/models/no-such-model', 'GET'],
    ];
    for (const [path, method, body, type] of bad) {
      const status = await send(`${s.url}${path}`, method, body, type);
      if (status < 400 || status >= 500) throw new Error(`${method} ${path} (${type ?? 'no body'}) should be a 4xx, got ${status}`);
    }
  }

  // Two scrapes after the traffic (on Prometheus's clock) hold all of it; then one rule evaluation more.
  // Waiting on no s2s metric here keeps a renamed one a failure of its own query, not of this setup.
  const seenAt = await scalar('time()');
  await waitFor('two scrapes after the traffic', async () => ((await scalar('min(timestamp(up{job="s2s"}))')) > seenAt + 2 ? true : undefined), children());
  await waitFor(
    'a rule evaluation after the traffic',
    async () => {
      const r = (await (await request(`${promUrl}/api/v1/rules`)).body.json()) as { data: { groups: { lastEvaluation: string }[] } };
      return r.data.groups.length && r.data.groups.every((g) => Date.parse(g.lastEvaluation) / 1000 > seenAt + 1) ? true : undefined;
    },
    children(),
  );
}, 180000);

afterAll(async () => {
  await Promise.all(children().map((c) => stopChild(c)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const dashboard = loadDashboard();

describe('every dashboard query returns data from a live Prometheus', () => {
  test.each(panelExpressions(dashboard).map((e) => [e.name, e.expr]))('%s', async (_name, expr) => {
    const promql = substituteGrafanaVariables(expr);
    const r = await query(promql);
    expect({ promql, status: r.status, error: r.error }).toEqual({ promql, status: 'success', error: undefined });
    expect({ promql, series: seriesOf(r).length > 0 }).toEqual({ promql, series: true });
  });

  test.each(variableQueries(dashboard).map((v) => [v.name, v]))('variable $%s lists values', async (_name, v) => {
    const promql = `group by (${v.label}) (${substituteGrafanaVariables(v.selector)})`;
    const r = await query(promql);
    expect(r.status).toBe('success');
    expect({ promql, values: seriesOf(r).map((x) => x.metric[v.label]).filter(Boolean).length > 0 }).toEqual({ promql, values: true });
  });
});

describe('every alert rule expression returns the series it watches', () => {
  test.each(ruleExpressions().map((e) => [e.name, e.expr]))('%s', async (_name, expr) => {
    const promql = comparisonsAsBool(expr);
    const r = await query(promql);
    expect({ promql, status: r.status, error: r.error }).toEqual({ promql, status: 'success', error: undefined });
    expect({ promql, series: seriesOf(r).length > 0 }).toEqual({ promql, series: true });
  });

  test('Prometheus loaded alerts.yml and evaluates every rule without error', async () => {
    const r = (await (await request(`${promUrl}/api/v1/rules`)).body.json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const rules = r.data.groups.flatMap((g) => g.rules);
    expect(rules.map((x) => x.name).sort()).toEqual(ruleExpressions().map((e) => e.name.split('/')[1]).sort());
    expect(rules.filter((x) => x.health !== 'ok').map((x) => `${x.name}: ${x.health} ${x.lastError ?? ''}`)).toEqual([]);
  });
});

describe('the traffic is what the dashboard should show', () => {
  test('flagged and clean verdicts, per model', async () => {
    expect(await scalar('sum(s2s_detections_total{job="s2s", model="tiny-flagging", verdict="adversarial"})')).toBeGreaterThan(0);
    expect(await scalar('sum(s2s_detections_total{job="s2s", model="tiny", verdict="clean"})')).toBeGreaterThan(0);
    expect(await scalar('sum(s2s_detections_total{job="s2s", model="tiny", verdict="adversarial"})')).toBe(0);
  });

  test('bad requests counted as 4xx and as bad_input rejections', async () => {
    expect(await scalar('sum(s2s_http_request_duration_seconds_count{job="s2s", status_code=~"4.."})')).toBeGreaterThanOrEqual(2 * 5);
    expect(await scalar('sum(s2s_rejections_total{job="s2s", reason="bad_input"})')).toBeGreaterThan(0);
  });

  test('the live /metrics declares every documented metric with its documented type', async () => {
    const res = await request(`${services[0].url}/metrics`);
    const text = await res.body.text();
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    const wrong = [...loadMetricsDoc().values()]
      .filter((m) => m.name !== 'up')
      .filter((m) => types.get(m.name) !== m.type)
      .map((m) => `${m.name}: documented ${m.type}, served ${types.get(m.name) ?? 'nothing'}`);
    expect(wrong).toEqual([]);
  });
});
