import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALERTS_PATH, ALERTS_TEST_PATH, PROMETHEUS_CONFIG_PATH } from './support/repo';
import { requireTool, run } from './support/tools';

/** The alert rules and the example config, checked and unit-tested by Prometheus's own promtool. */
describe('promtool', () => {
  const promtool = requireTool('promtool');

  test('alerts.yml passes `promtool check rules`', () => {
    const r = run(promtool, ['check', 'rules', ALERTS_PATH]);
    expect(r.output).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });

  test('alerts.yml passes its unit tests (`promtool test rules alerts.test.yml`)', () => {
    const r = run(promtool, ['test', 'rules', ALERTS_TEST_PATH]);
    expect(r.output).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });

  test('the unit tests fail when a threshold is wrong (they test something)', () => {
    // Same tests, against a copy of the rules whose error-ratio threshold is 10x too high.
    const dir = mkdtempSync(join(tmpdir(), 's2s-promtool-'));
    const rules = readFileSync(ALERTS_PATH, 'utf8');
    const broken = rules.replace(/(S2SHighErrorRatio[\s\S]*?\n\s*)> 0\.05\n/, '$1> 0.5\n');
    expect(broken).not.toBe(rules);
    writeFileSync(join(dir, 'alerts.yml'), broken);
    copyFileSync(ALERTS_TEST_PATH, join(dir, 'alerts.test.yml'));
    const r = run(promtool, ['test', 'rules', join(dir, 'alerts.test.yml')]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/S2SHighErrorRatio/);
  });

  test('the example prometheus.yml passes `promtool check config` (with its rule file)', () => {
    const r = run(promtool, ['check', 'config', PROMETHEUS_CONFIG_PATH]);
    expect(r.output).toMatch(/is valid prometheus config file syntax/);
    expect(r.status).toBe(0);
  });
});
