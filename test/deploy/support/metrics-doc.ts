import { METRICS_DOC_PATH, readText } from './repo';

/** One metric of the contract in docs/metrics.md. */
export interface DocMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  /** label name -> the values the doc enumerates (empty: any value) */
  labels: Map<string, string[]>;
}

/** Labels Prometheus attaches to every scraped series (and the operator adds under Kubernetes). */
export const TARGET_LABELS = ['job', 'instance', 'namespace', 'service', 'pod', 'container', 'endpoint'];

const backticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

/** Splits "`a` (`x`, `y`), `b`" at the commas that are not inside parentheses. */
function splitTopLevel(cell: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of cell) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur);
  return parts;
}

function parseLabels(cell: string): Map<string, string[]> {
  const labels = new Map<string, string[]>();
  for (const part of splitTopLevel(cell)) {
    const m = /^\s*`([a-zA-Z_][a-zA-Z0-9_]*)`\s*(?:\((.*)\))?\s*$/.exec(part);
    if (!m) continue; // "—": no labels
    labels.set(m[1], m[2] ? backticked(m[2]) : []);
  }
  return labels;
}

/**
 * The metrics table of docs/metrics.md: one row per metric (name, type, labels with their enumerated
 * values), plus the prom-client default metrics the doc names in its last row, plus Prometheus's `up`.
 */
export function loadMetricsDoc(path = METRICS_DOC_PATH): Map<string, DocMetric> {
  const metrics = new Map<string, DocMetric>();
  for (const line of readText(path).split('\n')) {
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length < 4 || cells[0] === 'name') continue;
    const [nameCell, typeCell, labelCell, meaning] = cells;
    const name = /^`([a-zA-Z_:][a-zA-Z0-9_:]*)`$/.exec(nameCell)?.[1];
    if (name) {
      const type = (['counter', 'gauge', 'histogram', 'summary'] as const).find((t) => typeCell.startsWith(t)) ?? 'untyped';
      metrics.set(name, { name, type, labels: parseLabels(labelCell) });
    } else if (/default process metrics/i.test(nameCell)) {
      for (const n of backticked(meaning).filter((n) => /^[a-z_:][a-z0-9_:]*$/.test(n))) {
        metrics.set(n, { name: n, type: n.endsWith('_total') ? 'counter' : 'gauge', labels: new Map() });
      }
    }
  }
  metrics.set('up', { name: 'up', type: 'gauge', labels: new Map() });
  return metrics;
}

/** The documented metric a series name belongs to (histograms expose _bucket, _sum and _count). */
export function resolveSeries(doc: Map<string, DocMetric>, series: string): { metric: DocMetric; suffix: string } | undefined {
  const direct = doc.get(series);
  if (direct) return { metric: direct, suffix: '' };
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  const base = m && doc.get(m[1]);
  if (base && (base.type === 'histogram' || (base.type === 'summary' && m![2] !== 'bucket'))) return { metric: base, suffix: m![2] };
  return undefined;
}
