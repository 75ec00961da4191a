import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareAtRadius, comparisonMarkdown } from '../../src/certify/compare';
import { certifyMarkdown } from '../../src/certify/report';
import { CertifyResults, summarise } from '../../src/certify/results';

/**
 * The certification runs the README and docs/certification.md quote live in
 * reports/. Their summaries must follow from their per-image records, and the
 * tables and paired comparisons the documents show must be the ones those
 * records give.
 */
const ROOT = join(__dirname, '..', '..');
const read = (dir: string): CertifyResults => JSON.parse(readFileSync(join(ROOT, 'reports', dir, 'certify.json'), 'utf8'));
const text = (doc: string) => readFileSync(join(ROOT, doc), 'utf8');
const DOCS = join('docs', 'certification.md');

/** Table rows without the timing column (wall time is the machine's, not the result's). */
const rowsOf = (markdown: string) =>
  markdown
    .trim()
    .split('\n')
    .slice(2)
    .map((l) => l.split('|').slice(1, 12).join('|'));

const NEW = 'f∘d-mse-stability-encoder';
const OLD = 'f∘d-stability-3ep';
const RUNS: Array<{ dir: string; n: number; images: number; docs: string[]; compare?: string[]; radius?: number }> = [
  // The protocol: n = 10,000 on 500 images; the committed denoiser against the references and the one it replaced.
  { dir: 'fashion-mnist-certify', n: 10000, images: 500, docs: ['README.md', DOCS], compare: [`${NEW}:f-gauss0.25`, `${NEW}:f`, `${NEW}:${OLD}`] },
  // The choice of the denoiser, on 500 held-out training images.
  {
    dir: 'fashion-mnist-certify-selection',
    n: 1000,
    images: 500,
    docs: [DOCS],
    compare: ['f∘d-mse-stability-enc:f-gauss0.25', 'f∘d-mse-stability-dec:f-gauss0.25', 'f∘d:f-gauss0.25', 'f∘d-mse-stability-enc:f∘d-mse-stability-dec', 'f∘d-mse-stability-dec:f∘d'],
  },
  // Denoiser candidates, n = 1,000 on the test images of the main run.
  {
    dir: 'fashion-mnist-certify-n1000',
    n: 1000,
    images: 500,
    docs: [DOCS],
    compare: ['f∘d:f-gauss0.25', 'f∘d:f', 'f∘d-stability-6ep:f∘d', 'f∘d-noisece0.25:f∘d', 'f∘d-stability-3ep-encoder:f∘d', 'f∘d-mse-stability-dec:f∘d', 'f∘d-mse-stability-enc:f∘d'],
  },
  // The other σ, n = 10,000 on 100 of the main run's images.
  ...['0.5', '0.12']
    .filter((s) => existsSync(join(ROOT, 'reports', `fashion-mnist-certify-sigma${s}`, 'certify.json')))
    // σ = 0.12 certifies nothing as far as 0.5 (its ceiling is 0.38): compared at 0.25.
    .map((s) => ({ dir: `fashion-mnist-certify-sigma${s}`, n: 10000, images: 100, docs: [DOCS], compare: [`f∘d-sigma${s}:f-gauss${s}`, `f∘d-sigma${s}:f`], radius: s === '0.12' ? 0.25 : 0.5 })),
  // The first run: the set's other bases and σ = 0.5, 100 images.
  { dir: 'fashion-mnist-certify-bases', n: 1000, images: 100, docs: [DOCS] },
];

describe.each(RUNS)('reports/$dir', ({ dir, n, images, docs, compare, radius = 0.5 }) => {
  const results = read(dir);

  it(`is complete, n = ${n} on ${images} images, and its summaries follow from the per-image certificates`, () => {
    expect(results.complete).toBe(true);
    expect(results.settings.n).toBe(n);
    expect(results.data.rows).toHaveLength(images);
    for (const m of results.models) {
      expect(m.images.map((c) => c.row)).toEqual(results.data.rows);
      for (const c of m.images) expect(c.correct).toBe(c.prediction !== 'abstain' && c.prediction === c.label);
      expect({ name: m.name, ...m.summary, secondsPerImage: 0 }).toEqual({ name: m.name, ...summarise(m.images), secondsPerImage: 0 });
    }
  });

  it(`is the table ${docs.join(' and ')} show${docs.length === 1 ? 's' : ''}`, () => {
    for (const doc of docs) {
      const body = text(doc);
      for (const row of rowsOf(certifyMarkdown(results))) expect([doc, row, body.includes(row)]).toEqual([doc, row, true]);
    }
  });

  if (compare) {
    it(`gives the paired comparisons at radius ${radius} that ${docs.join(' and ')} show${docs.length === 1 ? 's' : ''}`, () => {
      const pairs = compare.map((p) => p.split(':')).map(([a, b]) => compareAtRadius(results, a, b, radius));
      for (const doc of docs) {
        const body = text(doc);
        for (const row of rowsOf(comparisonMarkdown(pairs))) expect([doc, row, body.includes(row)]).toEqual([doc, row, true]);
      }
    });
  }
});

describe('reports/fashion-mnist-certify/sources.json', () => {
  // The run names its files by the paths it was given on the machine that ran it; sources.json
  // holds their sha256s, and these are the committed files: the set's smoothing denoiser, the one
  // it replaced and the noise-trained classifier, both kept beside the report.
  const sources = JSON.parse(text(join('reports', 'fashion-mnist-certify', 'sources.json'))) as Record<string, { file: string; sha256: string }>;
  const results = read('fashion-mnist-certify');
  const sha = (...path: string[]) => createHash('sha256').update(readFileSync(join(ROOT, ...path))).digest('hex');

  it('names the file of every model given as a file', () => {
    for (const m of results.models.filter((m) => m.base.includes('/'))) expect([m.name, m.base.endsWith('/' + sources[m.name]?.file)]).toEqual([m.name, true]);
  });

  it('the denoiser is the set’s committed smoothing.onnx, byte for byte', () => {
    const manifest = JSON.parse(text(join('models', 'fashion-mnist', 'manifest.json')));
    expect(sha('models', 'fashion-mnist', 'smoothing.onnx')).toBe(manifest.files.smoothing.sha256);
    expect(sources[NEW].sha256).toBe(manifest.files.smoothing.sha256);
  });

  it('the earlier denoiser and the noise-trained classifier are the ones committed beside the report', () => {
    for (const name of [OLD, 'f-gauss0.25']) expect([name, sha('reports', 'fashion-mnist-certify', sources[name].file)]).toEqual([name, sources[name].sha256]);
  });
});

describe.each(RUNS.filter((r) => r.dir.includes('sigma')))('reports/$dir: the files certified', ({ dir }) => {
  it('are kept beside the report, each with the sha256 the run recorded', () => {
    const results = read(dir);
    const files = results.models.filter((m) => m.sha256);
    expect(files.length).toBe(2);
    for (const m of files) {
      const file = m.base.split('/').pop()!;
      expect([m.name, createHash('sha256').update(readFileSync(join(ROOT, 'reports', dir, file))).digest('hex')]).toEqual([m.name, m.sha256]);
    }
  });
});
