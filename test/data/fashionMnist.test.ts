import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { subset } from '../../src/data/dataset';
import { DEFAULT_FASHION_MNIST_DIR, FASHION_MNIST_LABELS, loadFashionMnist } from '../../src/data/fashionMnist';
import { encodeIdx } from '../../src/data/idx';
import { UserError } from '../../src/util/errors';

const FIXTURE = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');

describe('Fashion-MNIST subset (committed fixture)', () => {
  const train = loadFashionMnist({ dir: FIXTURE, split: 'train' });
  const test_ = loadFashionMnist({ dir: FIXTURE, split: 'test' });

  test('sizes, geometry and the ten label names', () => {
    expect(train.size).toBe(1000);
    expect(test_.size).toBe(500);
    expect(train.shape).toEqual([1, 28, 28]);
    expect(train.labels).toEqual(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
    expect(train.files.images).toMatch(/train-images-idx3-ubyte\.gz$/);
    expect(test_.files.labels).toMatch(/t10k-labels-idx1-ubyte\.gz$/);
  });

  test('class balance: 100 per class in train, 50 in test', () => {
    const count = (v: Uint8Array) => FASHION_MNIST_LABELS.map((_, c) => v.filter((x) => x === c).length);
    expect(count(train.labelValues)).toEqual(new Array(10).fill(100));
    expect(count(test_.labelValues)).toEqual(new Array(10).fill(50));
  });

  test('batches are float32 NCHW in [0,1] with int64 labels, one row per index', () => {
    const idx = [0, 999, 5, 5];
    const b = train.get(idx) as { images: Float32Array; labels: BigInt64Array };
    expect(b.images.length).toBe(4 * 784);
    let min = Infinity;
    let max = -Infinity;
    for (const v of b.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBe(0);
    expect(max).toBeLessThanOrEqual(1);
    expect(max).toBeGreaterThan(0.5);
    expect([...b.labels]).toEqual(idx.map((i) => BigInt(train.labelValues[i])));
    expect(b.images[784 + 300]).toBeCloseTo(train.pixels[999 * 784 + 300] / 255, 7);
    expect(b.images.subarray(2 * 784, 3 * 784)).toEqual(b.images.subarray(3 * 784, 4 * 784));
  });

  test('whole split spans the full 0..255 range', () => {
    expect(train.pixels.reduce((a, v) => Math.max(a, v), 0)).toBe(255);
    expect(train.pixels.reduce((a, v) => Math.min(a, v), 255)).toBe(0);
  });

  test('out-of-range indices are refused', () => {
    expect(() => train.get([1000])).toThrow(RangeError);
    expect(() => subset(train, [0, 1]).get([2])).toThrow(RangeError);
  });

  test('subset maps rows through', () => {
    const s = subset(test_, [10, 20]);
    const b = s.get([1]) as { images: Float32Array; labels: BigInt64Array };
    expect(s.size).toBe(2);
    expect(b.labels[0]).toBe(BigInt(test_.labelValues[20]));
    expect(b.images[100]).toBe(Math.fround(test_.pixels[20 * 784 + 100] / 255));
  });

  const full = existsSync(join(DEFAULT_FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
  (full ? test : test.skip)('fixture rows are the recorded rows of the full test split', () => {
    const rows = JSON.parse(readFileSync(join(FIXTURE, 'rows.json'), 'utf8')) as { test: number[] };
    const whole = loadFashionMnist({ split: 'test' });
    expect(whole.size).toBe(10000);
    rows.test.forEach((r, k) => {
      expect(test_.labelValues[k]).toBe(whole.labelValues[r]);
    });
    const k = 123;
    expect(test_.pixels.subarray(k * 784, (k + 1) * 784)).toEqual(whole.pixels.subarray(rows.test[k] * 784, (rows.test[k] + 1) * 784));
  });
});

describe('Fashion-MNIST reader errors', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fmnist-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('missing files: the message names the file, the folder and how to get the data', () => {
    expect(() => loadFashionMnist({ dir, split: 'train' })).toThrow(UserError);
    expect(() => loadFashionMnist({ dir, split: 'train' })).toThrow(/train-images-idx3-ubyte\(\.gz\) not found in .*dataset-fashion-mnist/);
  });

  test('plain (uncompressed) files are read too', () => {
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), encodeIdx([2, 28, 28], new Uint8Array(2 * 784).fill(255)));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx([2], Uint8Array.of(3, 9)));
    const ds = loadFashionMnist({ dir, split: 'test' });
    expect(ds.size).toBe(2);
    expect((ds.get([1]) as { images: Float32Array }).images[0]).toBe(1);
  });

  test('label count mismatch and out-of-range labels name the labels file', () => {
    copyFileSync(join(FIXTURE, 't10k-images-idx3-ubyte.gz'), join(dir, 't10k-images-idx3-ubyte.gz'));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([3], Uint8Array.of(1, 2, 3))));
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow(/t10k-labels-idx1-ubyte\.gz: 3 labels for 500 images/);
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([500], new Uint8Array(500).fill(10))));
    expect(() => loadFashionMnist({ dir, split: 'test' })).toThrow(/label 10 at row 0 is outside 0\.\.9/);
  });

  test('a truncated images file is a UserError naming it', () => {
    const raw = encodeIdx([4, 28, 28], new Uint8Array(4 * 784));
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(raw.subarray(0, raw.length - 100)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([4], new Uint8Array(4))));
    expect(() => loadFashionMnist({ dir, split: 'train' })).toThrow(/train-images-idx3-ubyte\.gz: truncated IDX data/);
  });
});
