import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcnemar, pairedCounts } from '../../src/evaluation/statistics';
import { EnsembleResults } from '../../src/evaluation/ensemble';
import { ensembleMarkdown, readEnsembleResults } from '../../src/report/ensemble-summary';
import { block, outcome } from './ensemble-report';
import { ROOT, advFsSetManifest } from './paper-set';

/**
 * reports/fashion-mnist-worst-case-1.3.0: the 1.3.0 default set (served until
 * 1.4.0) under the attack ensemble on 1,000 test images, 100 APGD
 * iterations, ε = 0.02, 0.05 and 0.1. It must be a run of the graphs kept in
 * its models/, its table the summary of the committed run, and the paired
 * comparisons the prose states are recomputed from the per-image outcomes of
 * the runs it names.
 */
const dir = join(ROOT, 'reports', 'fashion-mnist-worst-case-1.3.0');

describe('reports/fashion-mnist-worst-case-1.3.0', () => {
  const results = readEnsembleResults(join(dir, 'ensemble.json'));

  it('is a run of the 1.3.0 default set, byte for byte, on 1,000 images with 100 APGD iterations at ε = 0.02, 0.05 and 0.1', () => {
    const served = advFsSetManifest();
    expect(results.modelSet.name).toBe(served.name);
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(results.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(results.images.ids).toHaveLength(1000);
    expect(results.config.params.iterations).toBe(100);
    expect([...new Set(results.combined.map((c) => c.eps))].sort()).toEqual([0.02, 0.05, 0.1]);
    // ε = 0.02 ran as two processes of three settings each, merged with the earlier runs
    expect(results.run.parts!.map((p) => `${p.eps}: ${p.settings!.length}`)).toEqual(['0.02: 3', '0.02: 3', '0.05: 6', '0.1: 6']);
  });

  it('f ∘ s beats f ∘ AE at every ε, paired on the same images, as the READMEs state', () => {
    // [ε, robust only under f ∘ s, only under f ∘ AE] for the worst case over both gradient sources
    const stated: Array<[number, number, number]> = [
      [0.02, 101, 9],
      [0.05, 167, 0],
      [0.1, 249, 0],
    ];
    for (const [eps, onlyS, onlyAe] of stated) {
      const c = pairedCounts(outcome(results, 'defended', eps).outcomes, outcome(results, 'autoencoder-all', eps).outcomes);
      expect({ eps, counts: [c.onlyA, c.onlyB] }).toEqual({ eps, counts: [onlyS, onlyAe] });
      expect(mcnemar(c.onlyA, c.onlyB)).toBeLessThan(1e-20);
    }
    const text = readFileSync(join(dir, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(text).toMatch(/72\.1 % \[69\.2, 74\.8\] at ε = 0\.02 against 62\.9 % for the plain autoencoder \(101 vs 9 images robust under one model only, p = 7\.8e-21\)/);
  });

  it('the report’s table is the summary of the committed run', () => {
    expect(block(readFileSync(join(dir, 'README.md'), 'utf8'), 'fashion-mnist-default')).toBe(ensembleMarkdown(results));
  });

  it('the earlier S2SNets were attacked on the same images with the same ensemble, so the paired counts compare like with like', () => {
    const halfBatch = readEnsembleResults(join(ROOT, 'reports', 'fashion-mnist-adversarial-fs', 'ensemble.json'));
    const paper = readEnsembleResults(join(ROOT, 'reports', 'fashion-mnist-adversarial-fs', 'served-default', 'ensemble.json'));
    for (const other of [halfBatch, paper]) {
      expect(other.images.ids).toEqual(results.images.ids);
      expect(other.config.params).toEqual(results.config.params);
    }
    // The plain autoencoder is the same graph in all three runs.
    expect(halfBatch.modelSet.files.autoencoder).toBe(results.modelSet.files.autoencoder);
    const converged = readEnsembleResults(join(dir, 'ae-converged', 'ensemble.json'));
    // [robust under the served S2SNet, robust under the other, only under the served one, only under the other], as the READMEs state them.
    const stated: Array<[EnsembleResults, string, number, number[]]> = [
      [paper, 'defended', 0.05, [549, 268, 281, 0]],
      [halfBatch, 'defended', 0.05, [549, 540, 28, 19]],
      [halfBatch, 'defended', 0.1, [269, 278, 22, 31]],
      [converged, 'autoencoder-all', 0.05, [549, 296, 254, 1]],
    ];
    for (const [other, setting, eps, counts] of stated) {
      const a = outcome(results, 'defended', eps);
      const b = outcome(other, setting, eps);
      const c = pairedCounts(a.outcomes, b.outcomes);
      expect([a.robust, b.robust, c.onlyA, c.onlyB]).toEqual(counts);
    }
    expect(mcnemar(281, 0)).toBeLessThan(1e-84);
    expect(mcnemar(28, 19)).toBeGreaterThan(0.2);
    const text = readFileSync(join(dir, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(text).toMatch(/54\.9 % against 26\.8 % — 281 images robust only under the new S2SNet, 0 only under the old \(p = 5\.1e-85\)/);
    expect(text).toMatch(/29\.6 % \[26\.9, 32\.5\] at ε = 0\.05 \(254 vs 1 against the S2SNet/);
  });

  it('the fair-baseline check attacked the committed copy of the longer-trained autoencoder, with the served classifier, on the same images', () => {
    const sub = join(dir, 'ae-converged');
    const manifest = JSON.parse(readFileSync(join(sub, 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string }>; metrics: { psnrDb: { autoencoder: number } } };
    const run = readEnsembleResults(join(sub, 'ensemble.json'));
    const aeSha = createHash('sha256').update(readFileSync(join(sub, 'autoencoder.onnx'))).digest('hex');
    expect(manifest.files.autoencoder.sha256).toBe(aeSha);
    expect(run.modelSet.files.autoencoder).toBe(aeSha);
    expect(run.modelSet.files.classifier).toBe(advFsSetManifest().files.classifier.sha256);
    expect(run.images.ids).toEqual(results.images.ids);
    expect(run.config.params).toEqual(results.config.params);
    // Stage 1 trained on: its reconstructions are closer (31.1 dB against the committed 27.6 dB on the test images).
    expect(manifest.metrics.psnrDb.autoencoder).toBeGreaterThan(advFsSetManifest().metrics.psnrDb.autoencoder + 3);
  });

  it('the detector-aware ensemble attacked the served set on the same images; the counts its section states are recomputed from the outcomes', () => {
    const aware = readEnsembleResults(join(dir, 'detector-aware', 'ensemble.json'));
    const served = advFsSetManifest();
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(aware.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(aware.images.ids).toEqual(results.images.ids);
    expect(aware.config.params).toEqual(results.config.params);
    expect(aware.config.members).toEqual(results.config.members);
    expect(aware.config.settings).toEqual(['detector-aware']);
    const report = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(block(report, 'fashion-mnist-detector-aware')).toBe(ensembleMarkdown(aware));

    const awareRow = outcome(aware, 'detector-aware', 0.05);
    const blind = results.detection!.combined.find((c) => c.setting === 'defended' && c.eps === 0.05)!;
    const c = pairedCounts(blind.outcomes, awareRow.outcomes);
    expect([blind.robustOrDetected, awareRow.robust, c.onlyA, c.onlyB]).toEqual([710, 655, 87, 32]);
    expect(mcnemar(87, 32)).toBeCloseTo(4.7e-7, 8);
    // robust or detected under both attackers, and robust under the blind ensemble ⊂ robust or detected under the aware one
    const both = (a: string, b: string) => [...a].filter((x, i) => x === '1' && b[i] === '1').length;
    expect(both(blind.outcomes, awareRow.outcomes)).toBe(623);
    const defended = outcome(results, 'defended', 0.05);
    expect([defended.robust, both(defended.outcomes, awareRow.outcomes)]).toEqual([549, 549]);
    expect(aware.detection!.rows[0]).toMatchObject({ setting: 'detector-aware', successful: 258, flaggedSuccessful: 0 });
    const text = report.replace(/\s+/g, ' ');
    expect(text).toMatch(/\*\*65\.5 % \[62\.5, 68\.4\]\*\* robust or detected, against \*\*71\.0 %\*\* \[68\.1, 73\.7\]/);
    expect(text).toMatch(/87 images and wins back 32 \(exact McNemar p = 4\.7e-7\)/);
    expect(text).toMatch(/\*\*62\.3 %\*\* \[59\.3, 65\.3\], 623 of 1,000/);
  });

  it('the 5,400-step stage 2 is the ablation row’s S2SNet with the served classifier and autoencoder; its stated comparison is recomputed', () => {
    const longer = readEnsembleResults(join(dir, 'stage2-5400', 'ensemble.json'));
    const row = JSON.parse(readFileSync(join(ROOT, 'reports', 'fashion-mnist-ablation', 'adversarial-fs-frac0.2-5400', 'manifest.json'), 'utf8')) as { files: Record<string, { sha256: string }>; metrics: { top1: { s2snet: number } } };
    const served = advFsSetManifest();
    expect(longer.modelSet.files.s2snet).toBe(row.files.s2snet.sha256);
    expect(longer.modelSet.files.s2snet).not.toBe(served.files.s2snet.sha256);
    for (const key of ['classifier', 'autoencoder']) expect(longer.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(longer.images.ids).toEqual(results.images.ids);
    expect(longer.config.params).toEqual(results.config.params);
    expect([row.metrics.top1.s2snet, served.metrics.top1.s2snet]).toEqual([0.9084, 0.9059]);
    // [robust, 5,400 steps; robust, served; only under 5,400; only under the served], as the table states them
    const stated: Array<[string, number, number[]]> = [
      ['defended', 0.05, [551, 549, 29, 27]],
      ['defended', 0.1, [277, 269, 28, 20]],
      ['whitebox-bpda', 0.05, [763, 725, 54, 16]],
      ['whitebox-bpda', 0.1, [601, 523, 88, 10]],
      ['graybox', 0.05, [763, 752, 28, 17]],
      ['graybox', 0.1, [476, 445, 54, 23]],
    ];
    for (const [setting, eps, counts] of stated) {
      const a = outcome(longer, setting, eps);
      const b = outcome(results, setting, eps);
      const c = pairedCounts(a.outcomes, b.outcomes);
      expect({ setting, eps, counts: [a.robust, b.robust, c.onlyA, c.onlyB] }).toEqual({ setting, eps, counts });
    }
    expect(mcnemar(29, 27)).toBeGreaterThan(0.85);
    expect(mcnemar(88, 10)).toBeLessThan(1e-16);
  });

  it('the detector-aware-features run attacked the served set on the same images; the counts its section states are recomputed', () => {
    const features = readEnsembleResults(join(dir, 'detector-aware-features', 'ensemble.json'));
    const aware = readEnsembleResults(join(dir, 'detector-aware', 'ensemble.json'));
    const served = advFsSetManifest();
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(features.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(features.images.ids).toEqual(results.images.ids);
    expect(features.config.params).toEqual(results.config.params);
    expect(features.config.settings).toEqual(['detector-aware-features']);
    expect(features.config.featurePenalty!.threshold).toBeCloseTo(0.266, 3);
    const report = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(block(report, 'fashion-mnist-detector-aware-features')).toBe(ensembleMarkdown(features));
    const f = outcome(features, 'detector-aware-features', 0.05);
    const a = outcome(aware, 'detector-aware', 0.05);
    const c = pairedCounts(f.outcomes, a.outcomes);
    expect([f.robust, a.robust, c.onlyA, c.onlyB]).toEqual([617, 655, 11, 49]);
    expect(mcnemar(11, 49)).toBeCloseTo(7.6e-7, 7);
    const blind = results.detection!.combined.find((x) => x.setting === 'defended' && x.eps === 0.05)!;
    const all = [...f.outcomes].filter((v, i) => v === '1' && a.outcomes[i] === '1' && blind.outcomes[i] === '1').length;
    const defended = outcome(results, 'defended', 0.05);
    expect([all, [...defended.outcomes].filter((v, i) => v === '1' && f.outcomes[i] === '1').length]).toEqual([589, 548]);
    const text = report.replace(/\s+/g, ' ');
    expect(text).toMatch(/\*\*61\.7 % \[58\.6, 64\.7\] robust or detected\*\*, against 65\.5 %/);
    expect(text).toMatch(/49 images lost to this attacker only, 11 to the other only \(exact McNemar p = 7\.6e-7\)/);
    expect(text).toMatch(/\*\*58\.9 %\*\* \[55\.8, 61\.9\], 589 of 1,000/);
  });

  it('the stronger ensemble ran on the first 200 of the same images; the counts its section states are recomputed image by image', () => {
    const stronger = readEnsembleResults(join(dir, 'stronger-200', 'ensemble.json'));
    const served = advFsSetManifest();
    for (const key of ['classifier', 'autoencoder', 's2snet', 'defended']) expect(stronger.modelSet.files[key]).toBe(served.files[key].sha256);
    expect(stronger.config.params).toMatchObject({ iterations: 100, restarts: 5, targetClasses: 9 });
    expect(stronger.images.ids).toHaveLength(200);
    const at = stronger.images.ids.map((id) => results.images.ids.indexOf(id));
    expect(at.every((i) => i >= 0)).toBe(true);
    const report = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(block(report, 'fashion-mnist-stronger-200')).toBe(ensembleMarkdown(stronger));
    // [robust under the stronger, under the committed on the same images, only under the stronger, only under the committed]
    const stated: Array<[string, number, number[]]> = [
      ['defended', 0.05, [108, 113, 0, 5]],
      ['whitebox-bpda', 0.05, [139, 141, 0, 2]],
      ['defended', 0.1, [60, 66, 0, 6]],
      ['whitebox-bpda', 0.1, [98, 106, 0, 8]],
    ];
    for (const [setting, eps, counts] of stated) {
      const a = outcome(stronger, setting, eps);
      const b = at.map((i) => outcome(results, setting, eps).outcomes[i]).join('');
      const c = pairedCounts(a.outcomes, b);
      expect({ setting, eps, counts: [a.robust, [...b].filter((v) => v === '1').length, c.onlyA, c.onlyB] }).toEqual({ setting, eps, counts });
    }
    expect(mcnemar(0, 5)).toBeCloseTo(0.0625, 6);
    expect(mcnemar(0, 6)).toBeCloseTo(0.03125, 6);
    const text = report.replace(/\s+/g, ' ');
    expect(text).toMatch(/falls from \*\*113 \(56\.5 %\)\*\* under the committed ensemble to \*\*108 \(54\.0 %\)\*\*/);
    expect(text).toMatch(/At ε = 0\.1: \*\*66 \(33\.0 %\) → 60 \(30\.0 %\)\*\*/);
  });
});
