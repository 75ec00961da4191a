import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';

/** Paths and parsed files of the deployment artefacts, shared by the tests in test/deploy/. */
export const ROOT = resolve(__dirname, '..', '..', '..');
export const at = (...parts: string[]) => join(ROOT, ...parts);

export const DASHBOARD_PATH = at('deploy', 'grafana', 's2s-dashboard.json');
export const ALERTS_PATH = at('deploy', 'prometheus', 'alerts.yml');
export const ALERTS_TEST_PATH = at('deploy', 'prometheus', 'alerts.test.yml');
export const PROMETHEUS_CONFIG_PATH = at('deploy', 'prometheus', 'prometheus.yml');
export const METRICS_DOC_PATH = at('docs', 'metrics.md');
export const HELM = at('helm');

export const readText = (path: string) => readFileSync(path, 'utf8');
export const readYaml = <T = unknown>(path: string): T => YAML.parse(readText(path)) as T;
export const readJson = <T = unknown>(path: string): T => JSON.parse(readText(path)) as T;
