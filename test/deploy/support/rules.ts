import { ALERTS_PATH, readYaml } from './repo';

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; interval?: string; rules: Rule[] }[];
}

export const loadRules = (): RuleFile => readYaml<RuleFile>(ALERTS_PATH);

/** Every rule of deploy/prometheus/alerts.yml with a name to show in test titles. */
export function ruleExpressions(): { name: string; expr: string }[] {
  return loadRules().groups.flatMap((g) => g.rules.map((r) => ({ name: `${g.name}/${r.alert ?? r.record}`, expr: r.expr.trim() })));
}
