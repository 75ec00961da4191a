import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestServer, call, postImage, startTestServer, testImage } from './harness';

/** The rows of the table in docs/metrics.md: name, type and label names. */
function documentedMetrics(): Array<{ name: string; type: string; labels: string[] }> {
  const md = readFileSync(join(__dirname, '..', '..', 'docs', 'metrics.md'), 'utf8');
  return md
    .split('\n')
    .filter((l) => /^\| `s2s_/.test(l))
    .map((l) => {
      const cells = l.split('|').map((c) => c.trim());
      const labels = [...cells[3].matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).filter((x) => !/^(decode|queue_wait|inference|postprocess|queue_full|deadline|overloaded|rate_limited|unauthorized|bad_input|detected|clean|adversarial|cpu|cuda)$/.test(x));
      return { name: cells[1].replace(/`/g, ''), type: cells[2].split(' ')[0], labels };
    });
}

/** Families in an exposition: name → {type, label names seen}. */
function families(text: string): Map<string, { type: string; labels: Set<string>; samples: string[] }> {
  const out = new Map<string, { type: string; labels: Set<string>; samples: string[] }>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) out.set(t[1], { type: t[2], labels: new Set(), samples: [] });
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? /.exec(line);
    if (s && !line.startsWith('#')) {
      const family = [...out.keys()].find((f) => s[1] === f || s[1] === `${f}_bucket` || s[1] === `${f}_sum` || s[1] === `${f}_count`);
      if (!family) continue;
      out.get(family)!.samples.push(line);
      for (const m of (s[3] ?? '').matchAll(/([a-zA-Z_]+)="/g)) if (m[1] !== 'le') out.get(family)!.labels.add(m[1]);
    }
  }
  return out;
}

describe('GET /metrics', () => {
  let s: TestServer;
  let text: string;
  beforeAll(async () => {
    // threshold 0 flags every image, so the detection series move
    s = await startTestServer({}, { threshold: 0 });
    await postImage(`${s.url}/v1/classify`, await testImage());
    await postImage(`${s.url}/v1/classify`, Buffer.from('not an image'));
    const r = await call(`${s.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    text = r.body.toString('utf8');
  });
  afterAll(() => s.close());

  it('exposes every metric of docs/metrics.md with its type and labels', () => {
    const docs = documentedMetrics();
    expect(docs.map((d) => d.name)).toEqual(
      expect.arrayContaining(['s2s_http_request_duration_seconds', 's2s_stage_duration_seconds', 's2s_batch_size', 's2s_queue_depth', 's2s_rejections_total', 's2s_detections_total', 's2s_images_total', 's2s_model_info', 's2s_ready']),
    );
    const fams = families(text);
    for (const d of docs) {
      // prom-client declares counters without the _total suffix in # TYPE
      const f = fams.get(d.name) ?? fams.get(d.name.replace(/_total$/, ''));
      expect([d.name, f?.type]).toEqual([d.name, d.type]);
      expect([d.name, [...f!.labels].sort()]).toEqual([d.name, [...d.labels].sort()]);
    }
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) expect(text).toContain(`\n${name} `);
  });

  it('reports what happened', () => {
    expect(text).toMatch(/^s2s_ready 1$/m);
    expect(text).toMatch(/^s2s_model_info\{model="tiny",version="0\.0\.1-test",execution_provider="cpu"\} 1$/m);
    expect(text).toMatch(/^s2s_images_total\{model="tiny"\} 1$/m);
    expect(text).toMatch(/^s2s_detections_total\{model="tiny",verdict="adversarial"\} 1$/m);
    expect(text).toMatch(/^s2s_detections_total\{model="tiny",verdict="clean"\} 0$/m);
    expect(text).toMatch(/^s2s_rejections_total\{reason="bad_input"\} 1$/m);
    expect(text).toMatch(/^s2s_rejections_total\{reason="queue_full"\} 0$/m);
    expect(text).toMatch(/^s2s_batch_size_count\{model="tiny"\} 1$/m);
    expect(text).toMatch(/^s2s_http_request_duration_seconds_count\{route="\/v1\/classify",method="POST",status_code="200"\} 1$/m);
    expect(text).toMatch(/^s2s_http_request_duration_seconds_count\{route="\/v1\/classify",method="POST",status_code="415"\} 1$/m);
    for (const stage of ['decode', 'queue_wait', 'inference', 'postprocess']) expect(text).toMatch(new RegExp(`^s2s_stage_duration_seconds_count\\{stage="${stage}",model="tiny"\\} 1$`, 'm'));
  });

  const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
  it('passes promtool check metrics (Debian package prometheus; required when CI is set)', () => {
    if (!promtool) {
      if (process.env.CI) throw new Error('CI is set but promtool is not installed (apt-get install prometheus)');
      console.warn('promtool not installed; skipping `promtool check metrics` (set CI to make this an error)');
      return;
    }
    const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: r.status, problems: `${r.stdout}${r.stderr}`.trim() }).toEqual({ status: 0, problems: '' });
  });
});
