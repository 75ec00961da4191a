import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcnemar, pairedCounts } from '../../src/evaluation/statistics';
import { EnsembleResults } from '../../src/evaluation/ensemble';
import { ensembleMarkdown, readEnsembleResults } from '../../src/report/ensemble-summary';
import { block, interval, outcome, pct, robustUnderAll, shownP } from './ensemble-report';
import { ROOT, servedSetManifest, tradesSetManifest } from './paper-set';

/**
 * reports/fashion-mnist-worst-case: the served default set (1.5.0) under the
 * attack ensemble on 1,000 test images, 100 APGD iterations, ε = 0.02, 0.05
 * and 0.1. It must be a run of the graphs being served, its table in both
 * READMEs the summary of the committed run, and every paired count and
 * p-value the prose states recomputed from the per-image outcomes.
 */
const dir = join(ROOT, 'reports', 'fashion-mnist-worst-case');
const screen = join(ROOT, 'reports', 'fashion-mnist-ablation', 'screen-1000', 'trades-b1-s3600-encoder');

describe('reports/fashion-mnist-worst-case (the served 1.5.0 set)', () => {
  const results = readEnsembleResults(join(dir, 'ensemble.json'));
  const older = readEnsembleResults(join(ROOT, 'reports', 'fashion-mnist-worst-case-1.4.0', 'ensemble.json'));
  const report = readFileSync(join(dir, 'README.md'), 'utf8');
  const text = report.replace(/\s+/g, ' ');

  it('is a run of the served default set, byte for byte, on 1,000 images with 100 APGD iterations at ε = 0.02, 0.05 and 0.1', () => {
    const served = servedSetManifest();
    expect([results.modelSet.name, results.modelSet.version, served.version]).toEqual([served.name, '1.5.0', '1.5.0']);
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(results.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(results.images.ids).toHaveLength(1000);
    expect(results.config.params).toMatchObject({ iterations: 100, restarts: 1, targetClasses: 2 });
    expect([...new Set(results.combined.map((c) => c.eps))].sort()).toEqual([0.02, 0.05, 0.1]);
    expect(results.run.parts!.map((p) => `${p.eps}: ${p.settings!.length}`)).toEqual(['0.02: 3', '0.02: 3', '0.05: 6', '0.1: 6']);
  });

  it('the README’s table and the report’s are the summary of the committed run', () => {
    const expected = ensembleMarkdown(results);
    expect(block(readFileSync(join(ROOT, 'README.md'), 'utf8'), 'fashion-mnist-default')).toBe(expected);
    expect(block(report, 'fashion-mnist-default')).toBe(expected);
  });

  it('the 1.4.0 run attacked the same images with the same ensemble; the classifier and autoencoder rows come out identical', () => {
    expect(older.images.ids).toEqual(results.images.ids);
    expect(older.config.params).toEqual(results.config.params);
    expect(older.modelSet.files.s2snet).toBe(tradesSetManifest().files.s2snet.sha256);
    for (const key of ['classifier', 'autoencoder']) expect(older.modelSet.files[key]).toBe(results.modelSet.files[key]);
    for (const setting of ['undefended', 'autoencoder', 'autoencoder-bpda']) for (const eps of [0.02, 0.05, 0.1]) expect(outcome(results, setting, eps).outcomes).toBe(outcome(older, setting, eps).outcomes);
  });

  it('repeats the screen’s 100-iteration run of the same S2SNet image for image, as the report says', () => {
    const hundred = readEnsembleResults(join(screen, 'iterations-100', 'ensemble.json'));
    expect(hundred.modelSet.files.s2snet).toBe(results.modelSet.files.s2snet);
    for (const setting of ['defended', 'whitebox', 'whitebox-bpda']) for (const eps of [0.05, 0.1]) expect(outcome(hundred, setting, eps).outcomes).toBe(outcome(results, setting, eps).outcomes);
    expect(text).toContain('repeat, image for image, the screen’s 100-iteration run of the same S2SNet file');
  });

  it('f ∘ s beats f ∘ AE at every ε, paired, as the report states', () => {
    const stated: Array<[number, number, number]> = [
      [0.02, 175, 8],
      [0.05, 285, 0],
      [0.1, 425, 0],
    ];
    for (const [eps, onlyS, onlyAe] of stated) {
      const c = pairedCounts(outcome(results, 'defended', eps).outcomes, outcome(results, 'autoencoder-all', eps).outcomes);
      expect({ eps, counts: [c.onlyA, c.onlyB] }).toEqual({ eps, counts: [onlyS, onlyAe] });
      expect(text).toContain(`${onlyS} vs ${onlyAe}`);
    }
    expect([shownP(mcnemar(175, 8)), shownP(mcnemar(285, 0)), shownP(mcnemar(425, 0))]).toEqual(['4.6e-42', '3.2e-86', '2.3e-128']);
    expect(text).toContain('(exact McNemar p = 4.6e-42)');
    expect(text).toContain('285 vs 0 at 0.05 (p = 3.2e-86), 425 vs 0 at 0.1 (p = 2.3e-128)');
  });

  it('every cell of the comparison with 1.4.0 is recomputed from both runs’ per-image outcomes', () => {
    for (const setting of ['defended', 'whitebox-bpda', 'graybox']) {
      for (const eps of [0.02, 0.05, 0.1]) {
        const a = outcome(results, setting, eps);
        const b = outcome(older, setting, eps);
        const c = pairedCounts(a.outcomes, b.outcomes);
        expect(text).toContain(`${pct(a.robust)} vs ${pct(b.robust)} % (${c.onlyA} / ${c.onlyB}, p = ${shownP(mcnemar(c.onlyA, c.onlyB))})`);
      }
    }
  });

  it('the gray-box ratio, the clean gap and the detector figures the prose quotes', () => {
    const served = servedSetManifest() as ReturnType<typeof servedSetManifest> & { detection: { threshold: number } };
    const gray = (r: EnsembleResults) => r.rows.find((x) => x.setting === 'graybox' && x.eps === 0.05)!;
    const cleanOnF = results.clean.find((x) => x.model === 'f')!;
    expect([gray(results).relative!.toFixed(3), gray(older).relative!.toFixed(3)]).toEqual(['0.865', '0.874']);
    expect(gray(results).relative).toBeCloseTo(gray(results).robust / cleanOnF.correct, 10);
    expect(text).toContain('**0.865** (goal 0.90; 1.4.0: 0.874)');
    expect([(served.metrics.top1.s2snet * 100).toFixed(2), ((served.metrics.top1.classifier - served.metrics.top1.s2snet) * 100).toFixed(2)]).toEqual(['89.37', '3.00']);
    expect(text).toContain('**89.37 %** on the 10,000 test images, **3.00 points below `f`**');
    expect(served.detection.threshold.toFixed(3)).toBe('0.488');
    const det = (setting: string) => results.detection!.rows.find((r) => r.setting === setting && r.eps === 0.05)!;
    expect([det('whitebox').successful, det('whitebox').flaggedSuccessful, det('undefended').successful, det('undefended').flaggedSuccessful]).toEqual([224, 106, 861, 824]);
    expect(text).toContain('flags 95.7 % of the successful undefended examples at ε = 0.05 (AUC 0.990) and 47.3 % of the successful white-box ones (AUC 0.920 over them; 1.4.0: 57.3 %, 0.939)');
    const blind = results.detection!.combined.find((c) => c.setting === 'defended' && c.eps === 0.05)!;
    expect([blind.robustOrDetected, interval(blind.robustOrDetected, 1000)]).toEqual([749, '72.1, 77.5']);
    expect(text).toContain('74.9 % [72.1, 77.5] correctly or refuses');
  });

  it('the detector-aware ensemble attacked the served set on the same images; the counts its section states are recomputed from the outcomes', () => {
    const aware = readEnsembleResults(join(dir, 'detector-aware', 'ensemble.json'));
    const served = servedSetManifest();
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(aware.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(block(report, 'fashion-mnist-detector-aware')).toBe(ensembleMarkdown(aware));
    expect(aware.images.ids).toEqual(results.images.ids);
    expect(aware.config.params).toEqual(results.config.params);
    expect(aware.config.settings).toEqual(['detector-aware']);
    const blind = results.detection!.combined.find((c) => c.setting === 'defended' && c.eps === 0.05)!;
    const a = outcome(aware, 'detector-aware', 0.05);
    const c = pairedCounts(blind.outcomes, a.outcomes);
    expect([a.robust, interval(a.robust, 1000), c.onlyA, c.onlyB, shownP(mcnemar(c.onlyA, c.onlyB))]).toEqual([747, '71.9, 77.3', 42, 40, '0.91']);
    const defended = outcome(results, 'defended', 0.05);
    expect([robustUnderAll(blind.outcomes, a.outcomes), robustUnderAll(defended.outcomes, a.outcomes), defended.robust]).toEqual([707, 664, 667]);
    expect([interval(707, 1000), interval(664, 1000)]).toEqual(['67.8, 73.4', '63.4, 69.3']);
    expect(text).toContain('**74.7 % [71.9, 77.3] robust or detected** (1.4.0: 69.8 %)');
    expect(text).toContain('42 images lost only to this attacker and 40 only to the detector-blind ensemble (exact McNemar p = 0.91)');
    expect(text).toContain('**70.7 %** [67.8, 73.4], 707 of 1,000');
    expect(text).toContain('(664 of 667 robust or detected)');
    expect(text).toContain('keeps at most **66.4 %** [63.4, 69.3] at ε = 0.05');
  });
});
