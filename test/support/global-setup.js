/**
 * Builds dist/ once per test run, before any suite starts: the CLI and the
 * report tests run the built `s2s` as users do, and none of them rebuilds it.
 * tsc is incremental (dist/.tsbuildinfo), so an unchanged tree costs seconds.
 * Type errors do not stop the emit; `npm run typecheck` is their gate.
 */
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

module.exports = async function buildDistOnce() {
  const root = join(__dirname, '..', '..');
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error(`building dist/ failed (tsc exit ${r.status})`);
};
