import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * A system tool the deployment tests need, or an error saying how to get it. These tests must not skip
 * when the tool is missing: CI installs Debian's `prometheus` package (promtool, prometheus) in .ci/run.
 */
export function requireTool(name: string): string {
  const candidates = [`/usr/bin/${name}`, ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, name))];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`${name} is not installed: run \`apt-get update && apt-get install -y prometheus\` (Debian's package ships promtool and prometheus; .ci/run does this)`);
  return found;
}

export function run(cmd: string, args: string[], cwd?: string): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}
