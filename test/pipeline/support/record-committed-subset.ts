/**
 * Writes test/pipeline/committed-subset.json: the expected counts of every
 * committed model set on the fixed subset (committed-eval.ts). Run it after
 * `s2s train set` / `npm run train:default` replaced a set, and commit the
 * file with the models:
 *
 *   npx tsx test/pipeline/support/record-committed-subset.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_RECIPE } from '../../../src/pipeline/default-set';
import { SUBSET_STRIDE, SubsetCounts, evaluateCommittedSet } from './committed-eval';

async function main(): Promise<void> {
  const root = join(__dirname, '..', '..', '..');
  const fashionDir = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
  const out: Record<string, SubsetCounts> = {};
  for (const c of DEFAULT_RECIPE.classifiers) {
    out[c.set] = await evaluateCommittedSet(join(root, 'models', c.set), fashionDir, SUBSET_STRIDE);
    process.stderr.write(`${c.set}: ${JSON.stringify(out[c.set])}\n`);
  }
  const doc = { subset: `every ${SUBSET_STRIDE}th Fashion-MNIST test image and every ${SUBSET_STRIDE}th calibration image`, stride: SUBSET_STRIDE, sets: out };
  writeFileSync(join(root, 'test', 'pipeline', 'committed-subset.json'), JSON.stringify(doc, null, 2) + '\n');
}

void main();
