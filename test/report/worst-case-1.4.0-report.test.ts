import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcnemar, pairedCounts } from '../../src/evaluation/statistics';
import { EnsembleResults } from '../../src/evaluation/ensemble';
import { ensembleMarkdown, readEnsembleResults } from '../../src/report/ensemble-summary';
import { block, interval, outcome, pct, robustUnderAll, shownP } from './ensemble-report';
import { ROOT, advFsSetManifest, tradesSetManifest } from './paper-set';

/**
 * reports/fashion-mnist-worst-case-1.4.0: the 1.4.0 default set (served until
 * 1.5.0) under the attack ensemble on 1,000 test images, 100 APGD iterations,
 * ε = 0.02, 0.05 and 0.1. It must be a run of the graphs kept in its models/
 * (the S2SNet; the other files are the served ones), its table the summary of
 * the committed run, and every paired count and p-value the prose states
 * recomputed from the per-image outcomes.
 */
const dir = join(ROOT, 'reports', 'fashion-mnist-worst-case-1.4.0');

describe('reports/fashion-mnist-worst-case-1.4.0 (the set served in 1.4.0)', () => {
  const results = readEnsembleResults(join(dir, 'ensemble.json'));
  const older = readEnsembleResults(join(ROOT, 'reports', 'fashion-mnist-worst-case-1.3.0', 'ensemble.json'));
  const report = readFileSync(join(dir, 'README.md'), 'utf8');
  const text = report.replace(/\s+/g, ' ');

  it('is a run of the 1.4.0 default set, byte for byte, on 1,000 images with 100 APGD iterations at ε = 0.02, 0.05 and 0.1', () => {
    const served = tradesSetManifest();
    expect([results.modelSet.name, results.modelSet.version]).toEqual([served.name, '1.4.0']);
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(results.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(results.images.ids).toHaveLength(1000);
    expect(results.config.params).toMatchObject({ iterations: 100, restarts: 1, targetClasses: 2 });
    expect([...new Set(results.combined.map((c) => c.eps))].sort()).toEqual([0.02, 0.05, 0.1]);
    expect(results.run.parts!.map((p) => `${p.eps}: ${p.settings!.length}`)).toEqual(['0.02: 3', '0.02: 3', '0.05: 6', '0.1: 6']);
  });

  it('the report’s table is the summary of the committed run', () => {
    expect(block(report, 'fashion-mnist-default')).toBe(ensembleMarkdown(results));
  });

  it('the 1.3.0 run attacked the same images with the same ensemble; the classifier and autoencoder rows come out identical', () => {
    expect(older.images.ids).toEqual(results.images.ids);
    expect(older.config.params).toEqual(results.config.params);
    expect(older.modelSet.files.s2snet).toBe(advFsSetManifest().files.s2snet.sha256);
    for (const key of ['classifier', 'autoencoder']) expect(older.modelSet.files[key]).toBe(results.modelSet.files[key]);
    for (const setting of ['undefended', 'autoencoder', 'autoencoder-bpda']) for (const eps of [0.02, 0.05, 0.1]) expect(outcome(results, setting, eps).outcomes).toBe(outcome(older, setting, eps).outcomes);
  });

  it('repeats the screen’s 100-iteration run of the same S2SNet image for image, as the screen says', () => {
    const screen = readEnsembleResults(join(ROOT, 'reports', 'fashion-mnist-ablation', 'screen-1000', 'trades-b1-s3600', 'iterations-100', 'ensemble.json'));
    expect(screen.modelSet.files.s2snet).toBe(results.modelSet.files.s2snet);
    for (const setting of ['defended', 'whitebox', 'whitebox-bpda']) for (const eps of [0.05, 0.1]) expect(outcome(screen, setting, eps).outcomes).toBe(outcome(results, setting, eps).outcomes);
  });

  it('f ∘ s beats f ∘ AE at every ε, paired, as the report states', () => {
    const stated: Array<[number, number, number]> = [
      [0.02, 138, 16],
      [0.05, 234, 2],
      [0.1, 351, 0],
    ];
    for (const [eps, onlyS, onlyAe] of stated) {
      const c = pairedCounts(outcome(results, 'defended', eps).outcomes, outcome(results, 'autoencoder-all', eps).outcomes);
      expect({ eps, counts: [c.onlyA, c.onlyB] }).toEqual({ eps, counts: [onlyS, onlyAe] });
      expect(text).toContain(`${onlyS} vs ${onlyAe}`);
    }
    expect(text).toContain('(exact McNemar p = 2.1e-25)');
    expect(shownP(mcnemar(234, 2))).toBe('5.1e-67');
    expect(shownP(mcnemar(351, 0))).toBe('4.4e-106');
  });

  it('every cell of the comparison with 1.3.0 is recomputed from both runs’ per-image outcomes', () => {
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
    const served = tradesSetManifest() as ReturnType<typeof tradesSetManifest> & { detection: { threshold: number } };
    const gray = results.rows.find((x) => x.setting === 'graybox' && x.eps === 0.05)!;
    const cleanOnF = results.clean.find((x) => x.model === 'f')!;
    expect(gray.relative!.toFixed(3)).toBe('0.874');
    expect(gray.relative).toBeCloseTo(gray.robust / cleanOnF.correct, 10);
    expect(text).toContain('**0.874**');
    expect([(served.metrics.top1.s2snet * 100).toFixed(2), ((served.metrics.top1.classifier - served.metrics.top1.s2snet) * 100).toFixed(2)]).toEqual(['89.56', '2.81']);
    expect(text).toContain('**89.56 %** on the 10,000 test images, **2.81 points below `f`**');
    expect(served.detection.threshold.toFixed(3)).toBe('0.489');
    const det = results.detection!.rows.find((r) => r.setting === 'whitebox' && r.eps === 0.05)!;
    expect([det.successful, det.flaggedSuccessful]).toEqual([279, 160]);
  });

  // the detector-aware runs and the stronger ensemble, and what they are compared with at ε = 0.05
  const aware = readEnsembleResults(join(dir, 'detector-aware', 'ensemble.json'));
  const features = readEnsembleResults(join(dir, 'detector-aware-features', 'ensemble.json'));
  const stronger = readEnsembleResults(join(dir, 'stronger-200', 'ensemble.json'));
  const blind = () => results.detection!.combined.find((c) => c.setting === 'defended' && c.eps === 0.05)!;
  /** A further run of the 1.4.0 graphs; the detector-aware ones on the headline's images with its budget. */
  const expectRunOfServedSet = (run: EnsembleResults, id: string) => {
    const served = tradesSetManifest();
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(run.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(block(report, id)).toBe(ensembleMarkdown(run));
  };

  it('the detector-aware ensemble attacked the served set on the same images; the counts its section states are recomputed from the outcomes', () => {
    expectRunOfServedSet(aware, 'fashion-mnist-detector-aware');
    expect(aware.images.ids).toEqual(results.images.ids);
    expect(aware.config.params).toEqual(results.config.params);
    expect(aware.config.members).toEqual(results.config.members);
    expect(aware.config.settings).toEqual(['detector-aware']);

    const awareRow = outcome(aware, 'detector-aware', 0.05);
    const c = pairedCounts(blind().outcomes, awareRow.outcomes);
    expect([blind().robustOrDetected, awareRow.robust, c.onlyA, c.onlyB]).toEqual([737, 698, 81, 42]);
    expect(shownP(mcnemar(81, 42))).toBe('5.6e-4');
    expect(aware.detection!.rows[0]).toMatchObject({ setting: 'detector-aware', successful: 195, flaggedSuccessful: 0 });
    expect(aware.detection!.rows[0].aucSuccessful!.toFixed(3)).toBe('0.918');
    expect(robustUnderAll(blind().outcomes, awareRow.outcomes)).toBe(656);
    // robust under the blind ensemble but fooled, unflagged, by the aware one: the worst case of f ∘ s falls with it
    const defended = outcome(results, 'defended', 0.05);
    expect([defended.robust, robustUnderAll(defended.outcomes, awareRow.outcomes)]).toEqual([614, 609]);
    expect([interval(656, 1000), interval(609, 1000)]).toEqual(['62.6, 68.5', '57.8, 63.9']);
    expect(text).toMatch(/\*\*69\.8 % \[66\.9, 72\.6\]\*\* robust or detected, against \*\*73\.7 %\*\* \[70\.9, 76\.3\]/);
    expect(text).toContain('costs the operator 81 images and wins back 42 (exact McNemar p = 5.6e-4)');
    expect(text).toContain('**65.6 %** [62.6, 68.5], 656 of 1,000');
    expect(text).toContain('(609 of 614 robust or detected; on 1.3.0 none were)');
    expect(text).toContain('**60.9 %** [57.8, 63.9]');
  });

  it('the stronger ensemble ran on 200 of the same images; the counts its section states are recomputed image by image', () => {
    expectRunOfServedSet(stronger, 'fashion-mnist-stronger-200');
    expect(stronger.config.params).toMatchObject({ iterations: 100, restarts: 5, targetClasses: 9 });
    expect(stronger.images.ids).toHaveLength(200);
    const at = stronger.images.ids.map((id) => results.images.ids.indexOf(id));
    expect(at.every((i) => i >= 0)).toBe(true);
    const onSubset = (outcomes: string) => at.map((i) => outcomes[i]).join('');
    // [robust under the stronger, under the headline ensemble on the same images, only under the stronger, only under the headline]
    const stated: Array<[string, number, number[]]> = [
      ['defended', 0.05, [120, 122, 0, 2]],
      ['whitebox-bpda', 0.05, [146, 158, 0, 12]],
      ['defended', 0.1, [80, 82, 0, 2]],
      ['whitebox-bpda', 0.1, [118, 122, 0, 4]],
    ];
    for (const [setting, eps, counts] of stated) {
      const a = outcome(stronger, setting, eps);
      const b = onSubset(outcome(results, setting, eps).outcomes);
      const c = pairedCounts(a.outcomes, b);
      expect({ setting, eps, counts: [a.robust, [...b].filter((v) => v === '1').length, c.onlyA, c.onlyB] }).toEqual({ setting, eps, counts });
    }
    expect([shownP(mcnemar(0, 2)), shownP(mcnemar(0, 12))]).toEqual(['0.5', '4.9e-4']);
    // every attack together: robust under both ensembles and not fooled unflagged by either detector-aware attacker
    const all = robustUnderAll(
      outcome(stronger, 'defended', 0.05).outcomes,
      onSubset(outcome(results, 'defended', 0.05).outcomes),
      onSubset(outcome(aware, 'detector-aware', 0.05).outcomes),
      onSubset(outcome(features, 'detector-aware-features', 0.05).outcomes),
    );
    expect(all).toBe(118);
    expect(interval(118, 200)).toBe('52.1, 65.6');
    expect(text).toMatch(/falls from \*\*122 \(61\.0 %\)\*\* under the headline ensemble to \*\*120 \(60\.0 %\)\*\* \[53\.1, 66\.5\]/);
    expect(text).toMatch(/At ε = 0\.1: \*\*82 \(41\.0 %\) → 80 \(40\.0 %\)\*\*/);
    expect(text).toContain('158 → 146 at ε = 0.05, 12 vs 0, p = 4.9e-4; 122 → 118 at 0.1');
    expect(text).toContain('**118 of 200, 59.0 %** [52.1, 65.6]');
  });

  it('the detector-aware-features run attacked the served set on the same images; the counts its section states are recomputed', () => {
    expectRunOfServedSet(features, 'fashion-mnist-detector-aware-features');
    expect(features.images.ids).toEqual(results.images.ids);
    expect(features.config.params).toEqual(results.config.params);
    expect(features.config.settings).toEqual(['detector-aware-features']);
    expect(features.config.featurePenalty!.threshold.toFixed(3)).toBe('0.491');
    const f = outcome(features, 'detector-aware-features', 0.05);
    const a = outcome(aware, 'detector-aware', 0.05);
    const c = pairedCounts(f.outcomes, a.outcomes);
    expect([f.robust, a.robust, c.onlyA, c.onlyB]).toEqual([657, 698, 11, 52]);
    expect(shownP(mcnemar(11, 52))).toBe('1.7e-7');
    const defended = outcome(results, 'defended', 0.05);
    expect(robustUnderAll(f.outcomes, a.outcomes, blind().outcomes)).toBe(627);
    expect([robustUnderAll(defended.outcomes, f.outcomes), robustUnderAll(defended.outcomes, f.outcomes, a.outcomes)]).toEqual([610, 606]);
    expect([interval(627, 1000), interval(606, 1000)]).toEqual(['59.7, 65.6', '57.5, 63.6']);
    expect(text).toContain('**65.7 % [62.7, 68.6] robust or detected** (1.3.0: 61.7 %)');
    expect(text).toContain('52 images lost to this attacker only, 11 to the other only (exact McNemar p = 1.7e-7)');
    expect(text).toContain('**62.7 %** [59.7, 65.6], 627 of 1,000');
    expect(text).toContain('(610 of 614 robust or detected)');
    expect(text).toContain('at most **606 of 1,000 (60.6 %** [57.5, 63.6])');
  });
});
