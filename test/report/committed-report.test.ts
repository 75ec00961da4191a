import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveMetrics } from '../../src/evaluation/metrics';
import { EvalResults, readResults } from '../../src/evaluation/results';
import { summaryMarkdown } from '../../src/report/summary';
import { openInChromium } from './browser';
import { paperSetManifest } from './paper-set';

/**
 * The committed evaluation of the default model set (issue #6, item 7): it
 * must be of the models we ship, cover the protocol, agree with itself, and
 * the README's tables must be exactly what the results say.
 */
const root = join(__dirname, '..', '..');
const REPORT = join(root, 'reports', 'fashion-mnist');

describe('reports/fashion-mnist', () => {
  const r: EvalResults = readResults(join(REPORT, 'results.json'));
  const adaptive: EvalResults = readResults(join(REPORT, 'adaptive', 'results.json'));
  // The report evaluated the default set of 1.2.0 (the paper's stage 2), kept as reports/fashion-mnist/models.
  const manifest = paperSetManifest();

  it('evaluates the default set of 1.2.0 (the paper-recipe S2SNet kept beside it), byte for byte', () => {
    for (const doc of [r, adaptive]) {
      expect(doc.modelSet.name).toBe(manifest.name);
      for (const [key, ref] of Object.entries(manifest.files as Record<string, { sha256: string }>)) {
        if (doc.modelSet.files[key] !== undefined) expect(doc.modelSet.files[key]).toBe(ref.sha256);
      }
      expect(doc.modelSet.files.classifier).toBe(manifest.files.classifier.sha256);
    }
  });

  it('covers the protocol on a seeded subset of at least 2,000 test images', () => {
    expect(r.data.selected).toBeGreaterThanOrEqual(2000);
    expect(r.coverage.complete).toBe(true);
    expect(r.config.attacks).toEqual(expect.arrayContaining(['fgsm', 'bim', 'pgd', 'cw']));
    expect(r.config.settings).toEqual(['undefended', 'whitebox', 'whitebox-prime', 'graybox', 'autoencoder']);
    expect(r.config.eps).toEqual([0.005, 0.01, 0.02, 0.05, 0.1]);
    expect(r.config.noise.filter((n) => n.startsWith('gaussian')).length).toBeGreaterThanOrEqual(2);
    expect(r.config.noise).toEqual(expect.arrayContaining(['none', expect.stringMatching(/^uniform:/), expect.stringMatching(/^sign:/)]));
    for (const attack of r.config.attacks)
      for (const setting of r.config.settings)
        for (const eps of r.config.eps)
          for (const noise of r.config.noise) {
            const e = r.entries.find((x) => x.attack === attack && x.setting === setting && x.eps === eps && x.noise === noise);
            expect(e).toBeDefined();
            expect(e!.counts.n).toBe(r.config.attackLimits[attack] ?? r.data.selected);
          }
    expect(adaptive.config.attacks).toEqual(expect.arrayContaining(['bim+eot']));
    expect(adaptive.coverage.complete).toBe(true);
  });

  it('every metric follows from its counts', () => {
    for (const doc of [r, adaptive]) {
      for (const e of doc.entries) {
        const m = deriveMetrics(e.counts, { targeted: doc.config.targeted, detector: doc.detection !== null });
        expect(e.metrics).toEqual(m);
        expect(e.metrics.meanLinf!).toBeLessThanOrEqual(e.eps + 1e-6);
      }
    }
  });

  it("the README's tables are the committed results", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /<!-- results:fashion-mnist -->\n([\s\S]*?)<!-- \/results:fashion-mnist -->/.exec(readme);
    expect(block).not.toBeNull();
    expect(block![1]).toBe(summaryMarkdown(r));
  });

  it.each([
    ['report.html', REPORT],
    ['adaptive/report.html', join(REPORT, 'adaptive')],
  ])('%s renders in Chromium: every chart drawn, every image loaded, no console errors', async (_name, dir) => {
    const { charts, images, errors } = await openInChromium(join(dir, 'report.html'));
    expect(charts.length).toBeGreaterThan(2);
    for (const c of charts) {
      expect(c.width).toBeGreaterThan(100);
      expect(c.marks).toBeGreaterThan(3);
    }
    expect(images.length).toBeGreaterThan(0);
    expect(images.filter((i) => !i.ok)).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);
});
