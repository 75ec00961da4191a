import { allPanels, loadDashboard, panelExpressions, variableQueries } from './support/dashboard';
import { DocMetric, loadMetricsDoc, resolveSeries, TARGET_LABELS } from './support/metrics-doc';
import { analyse, grafanaVariables } from './support/promql';
import { loadRules, ruleExpressions } from './support/rules';

/**
 * The dashboard and the alert rules may use only the metrics, labels and label values that
 * docs/metrics.md promises (plus Prometheus's `up`). The live test (prometheus-live.test.ts) then checks
 * that the running service really exposes them.
 */
const doc = loadMetricsDoc();
const dashboard = loadDashboard();

const expressions = [
  ...panelExpressions(dashboard).map((e) => ({ ...e, name: `dashboard: ${e.name}` })),
  ...variableQueries(dashboard).map((v) => ({ name: `dashboard variable $${v.name}`, expr: v.selector, label: v.label })),
  ...ruleExpressions().map((e) => ({ ...e, name: `rule: ${e.name}` })),
];

/** Literal alternatives of a regex like "a|b|c", or undefined when it is a real pattern. */
const literalAlternatives = (re: string) => (/^[A-Za-z0-9_:/-]+(\|[A-Za-z0-9_:/-]+)*$/.test(re) ? re.split('|') : undefined);

function problems(expr: string): string[] {
  const out: string[] = [];
  const { selectors, groupingLabels } = analyse(expr);
  if (selectors.length === 0) out.push('uses no metric at all');
  const used: DocMetric[] = [];
  for (const sel of selectors) {
    const hit = resolveSeries(doc, sel.metric);
    if (!hit) {
      out.push(`${sel.metric || '{…}'} is not in docs/metrics.md`);
      continue;
    }
    used.push(hit.metric);
    const allowed = new Set([...hit.metric.labels.keys(), ...TARGET_LABELS, ...(hit.suffix === 'bucket' ? ['le'] : [])]);
    for (const m of sel.matchers) {
      if (!allowed.has(m.label)) {
        out.push(`${sel.metric} has no label ${m.label} (documented: ${[...hit.metric.labels.keys()].join(', ') || 'none'})`);
        continue;
      }
      const values = hit.metric.labels.get(m.label);
      if (!values?.length || m.value.includes('$')) continue;
      const wanted = m.op === '=' || m.op === '!=' ? [m.value] : literalAlternatives(m.value);
      for (const v of wanted ?? []) if (!values.includes(v)) out.push(`${sel.metric}{${m.label}="${v}"}: ${m.label} is one of ${values.join(', ')}`);
    }
  }
  const known = new Set([...used.flatMap((m) => [...m.labels.keys()]), ...TARGET_LABELS, 'le']);
  for (const l of groupingLabels) if (!known.has(l)) out.push(`groups by ${l}, which none of its metrics has`);
  return out;
}

describe('metric names and labels in the dashboard and the alert rules are the documented ones', () => {
  test('the contract has the metrics this test expects to read', () => {
    expect(doc.size).toBeGreaterThanOrEqual(10);
  });

  test.each(expressions.map((e) => [e.name, e] as const))('%s', (_name, e) => {
    expect(problems(e.expr)).toEqual([]);
    if ('label' in e) {
      // label_values(selector, label): the label must exist on the selector's metric.
      const labels = analyse(e.expr).selectors.flatMap((s) => [...(resolveSeries(doc, s.metric)?.metric.labels.keys() ?? [])]);
      expect([...labels, ...TARGET_LABELS]).toContain(e.label);
    }
  });

  test('the reader rejects what it should (so the checks above can fail)', () => {
    expect(problems('rate(s2s_http_requests_total[5m])')).toEqual(['s2s_http_requests_total is not in docs/metrics.md']);
    expect(problems('rate(s2s_http_request_duration_seconds_count{code="500"}[5m])')[0]).toMatch(/has no label code/);
    expect(problems('rate(s2s_rejections_total{reason=~"queue_full|queue-full"}[5m])')).toEqual([
      's2s_rejections_total{reason="queue-full"}: reason is one of queue_full, deadline, overloaded, rate_limited, unauthorized, bad_input, detected',
    ]);
    expect(problems('sum by (stage) (s2s_queue_depth)')).toEqual(['groups by stage, which none of its metrics has']);
  });
});

describe('the dashboard covers the contract and works with "All" selected', () => {
  test('every documented s2s_ metric appears on the dashboard', () => {
    const used = new Set(panelExpressions(dashboard).flatMap((e) => analyse(e.expr).selectors.map((s) => resolveSeries(doc, s.metric)?.metric.name)));
    const missing = [...doc.keys()].filter((n) => n.startsWith('s2s_') && !used.has(n));
    expect(missing).toEqual([]);
  });

  test('variables are defined, and used only in regex matchers (so "All" = .* is valid)', () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    for (const e of expressions) {
      for (const v of grafanaVariables(e.expr)) expect({ expr: e.name, variable: v, defined: defined.has(v) }).toEqual({ expr: e.name, variable: v, defined: true });
      for (const sel of analyse(e.expr).selectors) {
        for (const m of sel.matchers.filter((m) => m.value.includes('$'))) expect({ expr: e.name, label: m.label, op: m.op }).toEqual({ expr: e.name, label: m.label, op: '=~' });
      }
    }
  });

  test('panels use the datasource variable, have unique ids and fit the 24-column grid', () => {
    const panels = allPanels(dashboard);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels.filter((p) => p.type !== 'row')) {
      expect({ panel: p.title, datasource: p.datasource?.uid }).toEqual({ panel: p.title, datasource: '${datasource}' });
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      expect(p.targets?.length).toBeGreaterThan(0);
    }
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
  });
});

describe('alert rules', () => {
  const rules = loadRules().groups.flatMap((g) => g.rules);

  test('cover what issue 7 asks for: latency, errors, load shedding, detection spike, target down', () => {
    const uses = (metric: string, also?: RegExp) => rules.some((r) => r.alert && analyse(r.expr).selectors.some((s) => s.metric === metric) && (!also || also.test(r.expr)));
    expect(uses('s2s_http_request_duration_seconds_bucket', /histogram_quantile\(0\.99/)).toBe(true);
    expect(uses('s2s_http_request_duration_seconds_count', /status_code=~"5\.\."/)).toBe(true);
    expect(uses('s2s_rejections_total', /queue_full/)).toBe(true);
    expect(uses('s2s_rejections_total', /overloaded/)).toBe(true);
    expect(uses('s2s_detections_total', /verdict="adversarial"/)).toBe(true);
    expect(uses('up', /== 0/)).toBe(true);
  });

  test('every alert has a severity, a for duration and a summary', () => {
    for (const r of rules.filter((r) => r.alert)) {
      expect({ alert: r.alert, severity: r.labels?.severity }).toEqual({ alert: r.alert, severity: expect.stringMatching(/^(critical|warning|info)$/) });
      expect(r.for).toMatch(/^[0-9]+[smh]$/);
      expect(r.annotations?.summary).toBeTruthy();
    }
  });
});
