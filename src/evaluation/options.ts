import { UserError } from '../util/errors';

/** Parsing of the evaluation commands' option values (errors name the flag). */

export function parseNumber(v: string | undefined, flag: string, check: (x: number) => boolean = () => true, what = 'a number'): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || !check(x)) throw new UserError(`${flag} expects ${what}, got '${v}'`);
  return x;
}

export const positiveInt = (v: string | undefined, flag: string) => parseNumber(v, flag, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
export const nonNegative = (v: string | undefined, flag: string) => parseNumber(v, flag, (x) => x >= 0, 'a number ≥ 0');
export const positive = (v: string | undefined, flag: string) => parseNumber(v, flag, (x) => x > 0, 'a number > 0');

/** `0.005,0.01,0.02` → ascending, distinct values in (0, 1]. */
export function parseEpsList(v: string, flag = '--eps'): number[] {
  const values = v.split(',').map((s) => s.trim()).filter(Boolean).map((s) => parseNumber(s, flag, (x) => x > 0 && x <= 1, 'values in (0, 1]')!);
  if (values.length === 0) throw new UserError(`${flag} needs at least one value`);
  return [...new Set(values)].sort((a, b) => a - b);
}

export const DEFAULT_EPS = '0.005,0.01,0.02,0.05,0.1';
