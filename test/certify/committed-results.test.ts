import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certifyMarkdown } from '../../src/certify/report';
import { CertifyResults, summarise } from '../../src/certify/results';

/**
 * reports/fashion-mnist-certify holds the certification run the README and
 * docs/certification.md quote. Its summaries must follow from its per-image
 * records, and the README's table must be the one those records give.
 */
const ROOT = join(__dirname, '..', '..');
const DIR = join(ROOT, 'reports', 'fashion-mnist-certify');
const results: CertifyResults = JSON.parse(readFileSync(join(DIR, 'certify.json'), 'utf8'));

it('is complete and its summaries follow from the per-image certificates', () => {
  expect(results.complete).toBe(true);
  for (const m of results.models) {
    expect(m.images.map((c) => c.row)).toEqual(results.data.rows);
    for (const c of m.images) expect(c.correct).toBe(c.prediction !== 'abstain' && c.prediction === c.label);
    expect({ name: m.name, ...m.summary, secondsPerImage: 0 }).toEqual({ name: m.name, ...summarise(m.images), secondsPerImage: 0 });
  }
});

it('is the table the README and docs/certification.md show', () => {
  const rows = certifyMarkdown(results).trim().split('\n').slice(2).map((l) => l.split('|').slice(1, 11).join('|'));
  for (const doc of ['README.md', join('docs', 'certification.md')]) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const row of rows) expect([doc, text.includes(row)]).toEqual([doc, true]);
  }
});
