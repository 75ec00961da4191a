#!/usr/bin/env node
/**
 * `npm test`: runs jest (arguments pass through) and ends with the plain line
 * `N passed, N failed` that CI reads; jest's own summary is not in that form.
 * `--lane=unit` (npm run test:unit) leaves out the slow suites of test-lanes.js.
 */
const { spawnSync } = require('node:child_process');
const { mkdtempSync, readFileSync, existsSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const out = join(mkdtempSync(join(tmpdir(), 's2s-jest-')), 'results.json');
const jest = require.resolve('jest/bin/jest');
const { SLOW_SUITES } = require('./test-lanes');
const args = process.argv.slice(2);
const unit = args.includes('--lane=unit');
const lane = unit ? SLOW_SUITES.map((s) => `--testPathIgnorePatterns=${s.replace(/[.]/g, '\\.')}$`) : [];
const r = spawnSync(process.execPath, [jest, '--json', `--outputFile=${out}`, ...lane, ...args.filter((a) => a !== '--lane=unit')], { stdio: 'inherit' });
if (!existsSync(out)) {
  console.log('0 passed, 1 failed');
  process.exit(r.status || 1);
}
const res = JSON.parse(readFileSync(out, 'utf8'));
// A suite that fails to load has no test results; count it as a failure so it cannot pass silently.
const brokenSuites = res.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
const failed = res.numFailedTests + brokenSuites;
const skipped = res.numPendingTests + res.numTodoTests;
console.log(`${res.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(r.status === 0 && failed === 0 ? 0 : 1);
