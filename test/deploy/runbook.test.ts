import { loadRules } from './support/rules';
import { jqPrograms, runbookSections } from './support/runbook';

/** Every alert links to a section of docs/runbook.md that has log queries to run. */
describe('docs/runbook.md', () => {
  const sections = runbookSections();
  const alerts = loadRules().groups.flatMap((g) => g.rules).filter((r) => r.alert);

  test.each(alerts.map((r) => [r.alert!, r]))('%s has a runbook_url to its own section, with a log query', (name, rule) => {
    const url = rule.annotations?.runbook_url;
    expect(url).toBe(`docs/runbook.md#${name.toLowerCase()}`);
    const section = sections.get(url!.split('#')[1]);
    expect(section).toBeDefined();
    expect(jqPrograms(section!).length).toBeGreaterThan(0);
  });
});
