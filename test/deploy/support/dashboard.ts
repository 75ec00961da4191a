import { DASHBOARD_PATH, readJson } from './repo';

export interface Target {
  expr?: string;
  refId?: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  panels?: Panel[];
}

export interface TemplateVariable {
  name: string;
  type: string;
  query?: string | { query: string };
  definition?: string;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: TemplateVariable[] };
}

export const loadDashboard = (): Dashboard => readJson<Dashboard>(DASHBOARD_PATH);

/** All panels, including those nested in collapsed rows. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL query of every panel, as Grafana stores it (variables not yet substituted). */
export function panelExpressions(d: Dashboard): { name: string; expr: string }[] {
  return allPanels(d).flatMap((p) =>
    (p.targets ?? []).filter((t) => t.expr !== undefined).map((t) => ({ name: `${p.title} [${t.refId}]`, expr: t.expr!.trim() })),
  );
}

/** Query variables' `label_values(selector, label)` as { selector, label }. */
export function variableQueries(d: Dashboard): { name: string; selector: string; label: string }[] {
  return d.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => {
      const q = typeof v.query === 'string' ? v.query : v.query!.query;
      const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q.trim());
      if (!m) throw new Error(`dashboard variable ${v.name}: expected label_values(selector, label), got ${q}`);
      return { name: v.name, selector: m[1], label: m[2] };
    });
}
