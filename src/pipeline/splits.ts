import { Dataset, subset } from '../data/dataset';
import { UserError } from '../util/errors';

/**
 * The held-out part of the training data that no stage trains on: the
 * detection threshold is calibrated there (clean images the models have not
 * seen, and not the test set, which stays for the reported metrics). The
 * last `n` rows, so the split is the same for every stage and every run
 * without storing an index list (Fashion-MNIST's training file is already in
 * random order).
 */
export interface Split {
  train: Dataset;
  holdout: Dataset;
  /** first held-out row of the source dataset */
  holdoutStart: number;
}

export function holdoutSplit(ds: Dataset, n: number): Split {
  if (!Number.isInteger(n) || n < 0 || n >= ds.size) throw new UserError(`--holdout ${n}: must be an integer in [0, ${ds.size - 1}] for a dataset of ${ds.size} images`);
  const start = ds.size - n;
  const rows = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  return { train: n === 0 ? ds : subset(ds, rows(0, start)), holdout: subset(ds, rows(start, ds.size)), holdoutStart: start };
}
