/**
 * Cuts the small committed Fashion-MNIST subset under test/fixtures/ from the
 * full data set: a class-balanced, seeded sample of the training and test
 * splits, written in the original IDX gzip format so the real reader is what
 * the tests exercise.
 *
 *   npx tsc scripts/make-fashion-subset.ts --outDir /tmp/subset --module node16 --target es2022 --types node \
 *     && NODE_PATH=$PWD/node_modules node /tmp/subset/scripts/make-fashion-subset.js [--from DIR] [--to DIR] [--train 100] [--test 50] [--seed 7]
 *
 * Counts are per class, so the defaults give 1000 training and 500 test images.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FashionMnist, Split, loadFashionMnist } from '../src/data/fashionMnist';
import { encodeIdx } from '../src/data/idx';
import { Rng } from '../src/util/random';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** `perClass` rows of every class, drawn without replacement, kept in source order. */
function balancedRows(ds: FashionMnist, perClass: number, rng: Rng): number[] {
  const byClass = ds.labels.map(() => [] as number[]);
  ds.labelValues.forEach((v, row) => byClass[v].push(row));
  const rows: number[] = [];
  byClass.forEach((members, c) => {
    if (members.length < perClass) throw new Error(`class ${c} has only ${members.length} images`);
    rows.push(...rng.shuffle(members).slice(0, perClass));
  });
  return rows.sort((a, b) => a - b);
}

function writeSplit(ds: FashionMnist, split: Split, rows: number[], to: string): void {
  const [, h, w] = ds.shape;
  const per = h * w;
  const pixels = new Uint8Array(rows.length * per);
  const labels = new Uint8Array(rows.length);
  rows.forEach((row, k) => {
    pixels.set(ds.pixels.subarray(row * per, (row + 1) * per), k * per);
    labels[k] = ds.labelValues[row];
  });
  const prefix = split === 'train' ? 'train' : 't10k';
  // mtime 0 in the gzip header is Node's default, so reruns give identical bytes.
  writeFileSync(join(to, `${prefix}-images-idx3-ubyte.gz`), gzipSync(encodeIdx([rows.length, h, w], pixels), { level: 9 }));
  writeFileSync(join(to, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(encodeIdx([rows.length], labels), { level: 9 }));
}

function main(): void {
  const from = option('from', '/usr/share/datasets/fashion-mnist');
  const to = option('to', 'test/fixtures/fashion-mnist-small');
  const rng = new Rng(Number(option('seed', '7')));
  mkdirSync(to, { recursive: true });
  const sources: Record<string, number[]> = {};
  for (const [split, perClass] of [['train', Number(option('train', '100'))], ['test', Number(option('test', '50'))]] as const) {
    const ds = loadFashionMnist({ dir: from, split });
    const rows = balancedRows(ds, perClass, rng);
    writeSplit(ds, split, rows, to);
    sources[split] = rows;
    console.log(`${split}: ${rows.length} images from ${ds.files.images}`);
  }
  // Which source rows were taken, so any fixture image can be traced back to the full set.
  writeFileSync(join(to, 'rows.json'), JSON.stringify(sources) + '\n');
}

main();
