#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isUserError } from '../util/errors';
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
    .showHelpAfterError('(run with --help for usage)');
  for (const m of commandModules()) m.register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (isUserError(e)) {
      process.stderr.write(`s2s: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`s2s: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
