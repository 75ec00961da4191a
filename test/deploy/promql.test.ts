import { analyse, comparisonsAsBool, grafanaVariables, substituteGrafanaVariables } from './support/promql';
import { loadMetricsDoc, resolveSeries } from './support/metrics-doc';

// The contract checks are only as good as this reader; pin its behaviour on expressions shaped like ours.
describe('PromQL reader', () => {
  test('finds selectors with matchers and ignores functions, keywords, durations and grouping labels', () => {
    const a = analyse(
      'histogram_quantile(0.99, sum by (le, route) (rate(s2s_http_request_duration_seconds_bucket{job=~"$job", route!="/metrics"}[$__rate_interval]))) > 0.5 and on (job) up == 1',
    );
    expect(a.selectors).toEqual([
      {
        metric: 's2s_http_request_duration_seconds_bucket',
        matchers: [
          { label: 'job', op: '=~', value: '$job' },
          { label: 'route', op: '!=', value: '/metrics' },
        ],
      },
      { metric: 'up', matchers: [] },
    ]);
    expect(a.groupingLabels).toEqual(['le', 'route', 'job']);
  });

  test('reads escaped strings and regex alternatives inside matchers', () => {
    const a = analyse('sum without (instance) (rate(s2s_rejections_total{reason=~"queue_full|overloaded", x="a\\"b"}[5m]))');
    expect(a.selectors[0].matchers).toEqual([
      { label: 'reason', op: '=~', value: 'queue_full|overloaded' },
      { label: 'x', op: '=', value: 'a"b' },
    ]);
    expect(a.groupingLabels).toEqual(['instance']);
  });

  test('substitutes Grafana variables the way "All" would', () => {
    const e = 'rate(m{job=~"$job", model=~"${model}", i=~"[[instance]]"}[$__rate_interval])';
    expect(grafanaVariables(e)).toEqual(['job', 'model', 'instance']);
    expect(substituteGrafanaVariables(e)).toBe('rate(m{job=~".*", model=~".*", i=~".*"}[30s])');
  });

  test('turns comparisons outside selectors into bool comparisons, once', () => {
    expect(comparisonsAsBool('up{job="s2s", a!="b"} == 0')).toBe('up{job="s2s", a!="b"} == bool 0');
    expect(comparisonsAsBool('a / b > 0.1\nand\nc >= bool 0.05')).toBe('a / b > bool 0.1\nand\nc >= bool 0.05');
    expect(comparisonsAsBool('x{y=~"a>b"} < 3')).toBe('x{y=~"a>b"} < bool 3');
  });
});

describe('docs/metrics.md reader', () => {
  const doc = loadMetricsDoc();

  test('reads names, types and enumerated label values from the table', () => {
    expect(doc.get('s2s_http_request_duration_seconds')?.type).toBe('histogram');
    expect([...doc.get('s2s_stage_duration_seconds')!.labels.keys()]).toEqual(['stage', 'model']);
    expect(doc.get('s2s_stage_duration_seconds')!.labels.get('stage')).toEqual(['decode', 'queue_wait', 'inference', 'postprocess']);
    expect(doc.get('s2s_ready')!.labels.size).toBe(0);
    expect(doc.has('process_resident_memory_bytes')).toBe(true);
    expect(doc.has('up')).toBe(true);
  });

  test('maps histogram series to their metric and nothing else', () => {
    expect(resolveSeries(doc, 's2s_batch_size_bucket')?.metric.name).toBe('s2s_batch_size');
    expect(resolveSeries(doc, 's2s_queue_depth_count')).toBeUndefined();
    expect(resolveSeries(doc, 's2s_request_duration_seconds_bucket')).toBeUndefined();
  });
});
