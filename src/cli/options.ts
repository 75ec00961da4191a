import type { Command } from 'commander';
import { UserError } from '../util/errors';

/**
 * Option checks that run before any command's action, so a bad value is one
 * line and exit 2 before a model or a data set is loaded. Flags mean the same
 * in every command, so one table covers them; a command may still check a
 * value more tightly (e.g. eval's --threads ≥ 1) when it reads it.
 */

type Check = (value: string) => string | undefined;

const integer = (min: number): Check => (v) => (/^-?\d+$/.test(v.trim()) && Number(v) >= min ? undefined : `an integer ≥ ${min}`);
const number = (min: number): Check => (v) => (v.trim() !== '' && Number.isFinite(Number(v)) && Number(v) >= min ? undefined : `a number ≥ ${min}`);
const oneOf = (...values: string[]): Check => (v) => (values.includes(v.trim().toLowerCase()) ? undefined : `one of ${values.join(', ')}`);

/** commander's camel-cased option name → check; every flag of this name is checked in every command. */
export const OPTION_CHECKS: Record<string, Check> = {
  provider: oneOf('auto', 'cpu', 'cuda'),
  threads: integer(0),
  jobs: integer(1),
  seed: integer(0),
  limit: integer(1),
  holdout: integer(0),
  size: integer(1),
  channels: integer(1),
  smoke: integer(1),
  epochs: integer(1),
  steps: integer(1),
  batch: integer(1),
  batchSize: integer(1),
  examples: integer(0),
  gallery: integer(0),
  eotSamples: integer(1),
  bimIterations: integer(1),
  pgdIterations: integer(1),
  pgdRestarts: integer(1),
  cwIterations: integer(1),
  cwSearchSteps: integer(1),
  lr: number(0),
  weightDecay: number(0),
  momentum: number(0),
  fpr: number(0),
  bimStep: number(0),
  pgdStep: number(0),
  cwLr: number(0),
  cwConst: number(0),
  cwKappa: number(0),
};

/** Throws a UserError naming the first flag whose value fails its check. */
export function checkOptions(cmd: Command): void {
  const values = cmd.opts<Record<string, unknown>>();
  for (const option of cmd.options) {
    const key = option.attributeName();
    const check = OPTION_CHECKS[key];
    const value = values[key];
    if (!check || typeof value !== 'string') continue;
    const expected = check(value);
    if (expected) throw new UserError(`${option.long} expects ${expected}, got '${value}'`);
  }
}
