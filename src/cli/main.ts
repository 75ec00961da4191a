#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isUserError } from '../util/errors';
import { checkOptions } from './options';
import { readdirSync } from 'node:fs';
import { extname, join } from 'node:path';

/**
 * The `s2s` command. Each subcommand lives in its own file under ./commands
 * and exports `register(program)`; this file discovers them (so adding a
 * command never touches this file) and turns user errors into one line on
 * stderr.
 */
function commandModules(): Array<{ register(program: Command): void }> {
  const dir = join(__dirname, 'commands');
  const ext = extname(__filename); // .js when built, .ts under jest
  return readdirSync(dir)
    .filter((f) => extname(f) === ext && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .sort()
    .map((f) => require(join(dir, f)));
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('s2s')
    .description('S2SNet defence proxy for image classifiers: serve, train, attack and evaluate on ONNX Runtime')
    .version(require('../../package.json').version as string)
    // One error style: `s2s: <what was wrong>` on one line, exit 2 (see main()).
    .configureOutput({ outputError: (message, write) => write(`s2s: ${message.replace(/^error: /, '').trim()} (see --help)\n`) })
    // Every option value is checked before the command's action loads anything.
    .hook('preAction', (_program, action) => checkOptions(action))
    // Errors are thrown to main() instead of exiting, in subcommands too (they inherit this).
    .exitOverride();
  for (const m of commandModules()) m.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    // --help and --version exit 0; every usage error (unknown option, missing argument, bad choice) is exit 2.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (isUserError(e)) {
      process.stderr.write(`s2s: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`s2s: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
