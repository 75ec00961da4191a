import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertifyResults } from '../../src/certify/results';
import { main } from '../../src/cli/main';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { encodeIdx } from '../../src/data/idx';

/**
 * `s2s certify`, `certify merge` and `certify summary` on the committed
 * default set and the small fixture, run as the user runs them (a process;
 * the report's vega is ESM-only, which jest's CommonJS sandbox cannot load).
 */

const ROOT = join(__dirname, '..', '..');
const SET = join(ROOT, 'models', 'fashion-mnist');
const DATA = join(ROOT, 'test', 'fixtures', 'fashion-mnist-small');
const COMMON = ['--n', '60', '--n0', '20', '--limit', '2', '--seed', '3', '--batch', '40', '--threads', '1', '--data', DATA];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 's2s-certify-cli-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function s2s(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
}
const run = (...args: string[]) => s2s('certify', ...args);
const read = (d: string): CertifyResults => JSON.parse(readFileSync(join(d, 'certify.json'), 'utf8'));

it('writes certify.json per image and a report; merges runs made with the same draws', async () => {
  expect(run('--models', SET, '--base', 'f', ...COMMON, '--out', join(dir, 'a')).status).toBe(0);
  expect(run('--models', SET, '--base', '', '--classifier', `copy=${join(SET, 'classifier.onnx')}`, ...COMMON, '--no-report', '--out', join(dir, 'b')).status).toBe(0);
  const a = read(join(dir, 'a'));
  expect(a.complete).toBe(true);
  expect(a.models.map((m) => [m.name, m.sigma, m.images.length])).toEqual([['f', 0.25, 2]]);
  for (const c of a.models[0].images) {
    expect(c.correct).toBe(c.prediction !== 'abstain' && c.prediction === c.label);
    expect(c.radius === 0 || c.prediction !== 'abstain').toBe(true);
  }
  // A base given as a file is recorded with its sha256 (the set's own bases by the set's version).
  expect(read(join(dir, 'b')).models[0].sha256).toBe(createHash('sha256').update(readFileSync(join(SET, 'classifier.onnx'))).digest('hex'));
  expect(a.models[0].sha256).toBeUndefined();
  // The same classifier file under another name, with the same seeded draws, certifies identically.
  expect(read(join(dir, 'b')).models[0].images.map((c) => [c.prediction, c.countA])).toEqual(a.models[0].images.map((c) => [c.prediction, c.countA]));
  expect(readFileSync(join(dir, 'a', 'certify.html'), 'utf8')).toMatch(/<svg/);

  expect(run('merge', join(dir, 'a'), join(dir, 'b'), '--out', join(dir, 'm')).status).toBe(0);
  expect(read(join(dir, 'm')).models.map((m) => m.name)).toEqual(['f', 'copy']);
  expect(existsSync(join(dir, 'm', 'certify.html'))).toBe(true);

  const summary = run('summary', join(dir, 'm'));
  expect(summary.status).toBe(0);
  expect(summary.stdout).toMatch(/^\| base classifier \| σ \| r = 0 \|/);
});

it('--reuse takes the certificates an earlier run drew with the same noise, and only those', async () => {
  const three = COMMON.map((a, i) => (COMMON[i - 1] === '--limit' ? '3' : a));
  expect(run('--models', SET, '--base', 'f', ...COMMON, '--no-report', '--out', join(dir, 'two')).status).toBe(0);
  expect(run('--models', SET, '--base', 'f', ...three, '--no-report', '--out', join(dir, 'fresh')).status).toBe(0);
  const extended = run('--models', SET, '--base', 'f,f∘s', ...three, '--no-report', '--reuse', join(dir, 'two'), '--out', join(dir, 'extended'));
  expect(extended.status).toBe(0);
  expect(extended.stderr).toMatch(/certify f σ=0.25: 3\/3 images \(2 reused\)/);
  const two = read(join(dir, 'two'));
  const fresh = read(join(dir, 'fresh'));
  const ext = read(join(dir, 'extended'));
  // A larger --limit of the same seed is a superset, so two of three images are taken as they were ...
  expect(two.data.rows.every((r) => fresh.data.rows.includes(r))).toBe(true);
  expect(ext.cost?.reusedImages).toBe(2);
  // ... and the answers are those a fresh run computes (f∘s was not in the earlier run: computed).
  const answers = (r: CertifyResults, name: string) => r.models.find((m) => m.name === name)!.images.map(({ seconds: _s, ...c }) => c);
  expect(answers(ext, 'f')).toEqual(answers(fresh, 'f'));
  expect(ext.models.find((m) => m.name === 'f∘s')!.images).toHaveLength(3);
  for (const c of two.models[0].images) expect(ext.models[0].images.find((e) => e.row === c.row)!.seconds).toBe(c.seconds);

  // Other draws (another n) reuse nothing.
  const otherN = three.map((a, i) => (three[i - 1] === '--n' ? '80' : a));
  expect(run('--models', SET, '--base', 'f', ...otherN, '--no-report', '--reuse', join(dir, 'two'), '--out', join(dir, 'other')).status).toBe(0);
  expect(read(join(dir, 'other')).cost?.reusedImages).toBeUndefined();
});

it('--holdout certifies the training rows every stage held out: the certificates of those rows given as a test split, never merged with one', async () => {
  // The last 100 training images of the fixture, written as a folder whose test split they are.
  const train = loadFashionMnist({ dir: DATA, split: 'train' });
  const rows = Array.from({ length: 100 }, (_, i) => train.size - 100 + i);
  const per = 28 * 28;
  const pixels = new Uint8Array(rows.length * per);
  rows.forEach((r, k) => pixels.set(train.pixels.subarray(r * per, (r + 1) * per), k * per));
  mkdirSync(join(dir, 'heldout'));
  writeFileSync(join(dir, 'heldout', 't10k-images-idx3-ubyte'), encodeIdx([rows.length, 28, 28], pixels));
  writeFileSync(join(dir, 'heldout', 't10k-labels-idx1-ubyte'), encodeIdx([rows.length], Uint8Array.from(rows, (r) => train.labelValues[r])));

  expect(run('--models', SET, '--base', 'f', ...COMMON, '--holdout', '100', '--no-report', '--out', join(dir, 'a')).status).toBe(0);
  const asTest = COMMON.map((a, i) => (COMMON[i - 1] === '--data' ? join(dir, 'heldout') : a));
  expect(run('--models', SET, '--base', 'f', ...asTest, '--no-report', '--out', join(dir, 'b')).status).toBe(0);
  const a = read(join(dir, 'a'));
  const b = read(join(dir, 'b'));
  expect(a.data.source).toMatch(/^Fashion-MNIST train \(1000 images, .*\), rows 900–999 \(held out of training\)$/);
  expect(a.data.size).toBe(100);
  expect(a.data.rows).toEqual(b.data.rows);
  const answers = (r: CertifyResults) => r.models[0].images.map(({ seconds: _s, ...c }) => c);
  expect(answers(a)).toEqual(answers(b));
  // Same rows and draws, other images: not one run.
  const merged = run('merge', join(dir, 'a'), join(dir, 'b'), '--out', join(dir, 'm'));
  expect(merged.status).toBe(2);
  expect(merged.stderr).toMatch(/other settings or images .*data, rows/);
});

it('refuses to merge runs made with other draws', async () => {
  expect(run('--models', SET, '--base', 'f', ...COMMON, '--no-report', '--out', join(dir, 'a')).status).toBe(0);
  expect(run('--models', SET, '--base', 'f', ...COMMON, '--seed', '4', '--no-report', '--out', join(dir, 'b')).status).toBe(0);
  const r = run('merge', join(dir, 'a'), join(dir, 'b'), '--out', join(dir, 'm'));
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^s2s: certify merge: .* was made with other settings or images/);
});

it.each([
  [['--base', 'f', '--out', 'x'], /^s2s: certify: --models <dir> is required\n$/],
  [['--models', SET, '--base', 'g', '--out', 'x'], /^s2s: unknown base classifier 'g'; use one of f, f∘s, f∘ae, f∘d\n$/],
  [['--models', SET, '--sigma', '0', '--out', 'x'], /^s2s: --sigma expects values in \(0, 1\], got '0'\n$/],
  [['--models', SET, '--alpha', '0.7', '--out', 'x'], /^s2s: --alpha expects a number in \(0, 0.5\), got '0.7'\n$/],
  [['--models', SET, '--n', 'many', '--out', 'x'], /^s2s: --n expects a positive integer, got 'many'\n$/],
  [['--models', SET, '--classifier', 'nofile', '--out', 'x'], /^s2s: --classifier 'nofile' is not NAME=FILE/],
  [['--models', SET, '--classifier', 'a=/nonexistent.onnx', '--out', 'x'], /^s2s: --classifier a: \/nonexistent.onnx does not exist\n$/],
  [['--models', '/nonexistent', '--out', 'x'], /^s2s: no model set at \/nonexistent/],
  [['--models', SET, '--holdout', '1000', '--data', DATA, '--out', 'x'], /^s2s: --holdout 1000: must be an integer in \[0, 999\] for a dataset of 1000 images\n$/],
  [['--models', SET, '--holdout', '0', '--out', 'x'], /^s2s: --holdout expects a positive integer, got '0'\n$/],
])('bad input %j is one line and exit 2', async (args, message) => {
  // In-process: these fail before anything would load the report's ESM modules.
  const err: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    expect(await main(['node', 's2s', 'certify', ...args])).toBe(2);
  } finally {
    spy.mockRestore();
  }
  expect(err.join('')).toMatch(message);
});
