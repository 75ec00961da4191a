import { streamRng } from '../attacks/seeding';
import { UserError } from '../util/errors';

/**
 * Which images an evaluation covers, and which of them one shard takes.
 * `--limit N --seed S` draws a fixed subset (the same N rows for the same S,
 * whatever the shard split); `--shard i/n` then takes the i-th of n
 * contiguous, near-equal slices of that selection. Shard indices start at 0,
 * like a Kubernetes Indexed Job's JOB_COMPLETION_INDEX.
 */
export interface Shard {
  index: number;
  count: number;
}

export const WHOLE: Shard = { index: 0, count: 1 };

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new UserError(`--shard '${text}' is not i/n (e.g. 0/8; i counts from 0)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new UserError(`--shard ${text}: n must be at least 1`);
  if (index >= count) throw new UserError(`--shard ${text}: i must be below n (shards are numbered 0 … ${count - 1})`);
  return { index, count };
}

/** Dataset rows of the evaluation, ascending. */
export function selectRows(size: number, limit: number | undefined, seed: number): number[] {
  if (limit === undefined || limit >= size) return Array.from({ length: size }, (_, i) => i);
  if (!(Number.isInteger(limit) && limit >= 1)) throw new UserError(`--limit must be a positive integer, got ${limit}`);
  return streamRng(seed, 'selection')
    .permutation(size)
    .slice(0, limit)
    .sort((a, b) => a - b);
}

export function shardSlice<T>(rows: readonly T[], shard: Shard): T[] {
  const start = Math.floor((shard.index * rows.length) / shard.count);
  const end = Math.floor(((shard.index + 1) * rows.length) / shard.count);
  return rows.slice(start, end);
}

/**
 * The rows an attack with `--attack-limit N` runs on: N of the selection at
 * evenly spaced positions. Spread rather than the first N, so every
 * contiguous shard gets its share of a costly attack (the first N would all
 * land in shard 0 and keep the other shards idle); the same rows whatever
 * the shard split, and still a random sample since the selection is one.
 */
export function spreadSubset<T>(rows: readonly T[], limit: number): T[] {
  if (limit >= rows.length) return [...rows];
  return Array.from({ length: limit }, (_, i) => rows[Math.floor((i * rows.length) / limit)]);
}
