import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const { SLOW_SUITES } = require(join(ROOT, 'scripts', 'test-lanes.js')) as { SLOW_SUITES: string[] };
const pkg = require(join(ROOT, 'package.json')) as { scripts: Record<string, string> };

/** The everyday lane leaves out only suites that exist (a renamed suite must not silently join it), and CI runs all. */
describe('test lanes', () => {
  test.each(SLOW_SUITES)('%s exists', (suite) => {
    expect(existsSync(join(ROOT, suite))).toBe(true);
  });

  test('npm run test:unit is the unit lane; npm test runs every suite', () => {
    expect(pkg.scripts['test:unit']).toBe('node scripts/run-tests.js --lane=unit');
    expect(pkg.scripts.test).toBe('node scripts/run-tests.js');
  });
});
