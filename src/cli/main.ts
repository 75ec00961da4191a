#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isUserError } from '../util/errors';
import { register as registerInfo } from './commands/info';

/**
 * The `s2s` command. Each subcommand registers itself from its own file; this
 * file only composes them and turns user errors into one line on stderr.
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('s2s')
    .description('S2SNet defence proxy for image classifiers: serve, train, attack and evaluate on ONNX Runtime')
    .version(require('../../package.json').version as string)
    .showHelpAfterError('(run with --help for usage)');
  for (const register of [registerInfo]) register(program);
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
