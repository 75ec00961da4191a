import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DetectorResults } from '../../src/evaluation/detector-comparison';
import { detectorsMarkdown } from '../../src/report/detectors-summary';
import { ROOT, advFsSetManifest, servedSetManifest, tradesSetManifest } from './paper-set';
import { wilson } from '../../src/evaluation/statistics';

/**
 * reports/fashion-mnist-detectors/served: the detection scores of the served
 * set against the three attacks. It must be a run of the set being served,
 * its summary.md the summary of the committed run, and every rate the
 * README's table states recomputed from the per-image outcomes.
 */
const dir = join(ROOT, 'reports', 'fashion-mnist-detectors');
const run = JSON.parse(readFileSync(join(dir, 'served', 'detectors.json'), 'utf8')) as DetectorResults;

describe('reports/fashion-mnist-detectors/served', () => {
  it('is a run of the served set, with its KL threshold, against all three attacks', () => {
    const served = advFsSetManifest() as ReturnType<typeof advFsSetManifest> & { detection: { threshold: number } };
    expect([run.modelSet.name, run.modelSet.version]).toEqual([served.name, served.version]);
    expect(run.klThresholdCheck.recomputed).toBe(served.detection.threshold);
    expect(run.settings.map((s) => s.setting)).toEqual(['undefended', 'detector-aware', 'feature-aware']);
    expect([run.data.selected, run.config.eps, run.config.attack, run.config.iterations, run.config.featureWeight]).toEqual([500, 0.05, 'bim', 10, 1]);
    expect(readFileSync(join(dir, 'served', 'summary.md'), 'utf8')).toBe(detectorsMarkdown(run));
  });

  it('the README’s table is the run’s: successful examples flagged by each score, recounted from the outcomes', () => {
    const text = readFileSync(join(dir, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    const stated: Array<[string, number, number, number, number]> = [
      // setting, successful, attacked, flagged by the KL, by the feature-space error
      ['undefended', 393, 464, 373, 387],
      ['detector-aware', 76, 462, 43, 71],
      ['feature-aware', 80, 462, 5, 0],
    ];
    for (const [name, successful, attacked, kl, feature] of stated) {
      const s = run.settings.find((x) => x.setting === name)!;
      expect([s.successful, s.attacked]).toEqual([successful, attacked]);
      // recounted from the scores: the successful examples ('-' marks the others) whose score is over the threshold
      const flaggedSuccess = (c: 'kl' | 'feature-mse') =>
        [...s.scores[c].outcomes].filter((o, i) => o !== '-' && !(s.adversarialScores[c][i] <= s.scores[c].threshold)).length;
      expect([...s.scores.kl.outcomes].filter((o) => o !== '-')).toHaveLength(successful);
      expect([flaggedSuccess('kl'), flaggedSuccess('feature-mse')]).toEqual([kl, feature]);
      expect(text).toContain(`(${successful} / ${attacked}) | `);
    }
    expect(text).toMatch(/\| \*\*6\.3 %\*\* \[2\.7, 13\.8\] \| \*\*0\.0 %\*\* \[0\.0, 4\.6\] \(0 vs 5, p = 0\.06\) \|/);
    const fa = run.settings.find((x) => x.setting === 'feature-aware')!;
    expect(fa.scores['feature-mse'].aucSuccessful).toBeCloseTo(0.131, 3);
    expect(fa.versusKl['feature-mse']).toMatchObject({ onlyCandidate: 0, onlyKl: 5 });
  });

  it('the APGD-CE run (served-apgd): the same set and images, and the README’s second table recounted', () => {
    const apgd = JSON.parse(readFileSync(join(dir, 'served-apgd', 'detectors.json'), 'utf8')) as DetectorResults;
    expect([apgd.modelSet.version, apgd.config.attack, apgd.config.iterations, apgd.data.rows]).toEqual([run.modelSet.version, 'apgd-ce', 100, run.data.rows]);
    expect(readFileSync(join(dir, 'served-apgd', 'summary.md'), 'utf8')).toBe(detectorsMarkdown(apgd));
    const stated: Array<[string, number, number, number, number]> = [
      ['undefended', 429, 464, 413, 429],
      ['detector-aware', 102, 462, 56, 91],
      ['feature-aware', 133, 462, 6, 0],
    ];
    for (const [name, successful, attacked, kl, feature] of stated) {
      const s = apgd.settings.find((x) => x.setting === name)!;
      expect([s.successful, s.attacked, s.scores.kl.detected, s.scores['feature-mse'].detected]).toEqual([successful, attacked, kl, feature]);
    }
    expect(readFileSync(join(dir, 'README.md'), 'utf8').replace(/\s+/g, ' ')).toMatch(/\| aware of the feature-space error \(133 \/ 462\) \| \*\*4\.5 %\*\* \[2\.1, 9\.5\] \| \*\*0\.0 %\*\* \[0\.0, 2\.8\] \|/);
  });
});

describe('reports/fashion-mnist-detectors/served-1.4.0', () => {
  const latest = JSON.parse(readFileSync(join(dir, 'served-1.4.0', 'detectors.json'), 'utf8')) as DetectorResults;

  it('is the same run on the set served in 1.4.0: its graphs (kept in reports/fashion-mnist-worst-case-1.4.0/models), its KL threshold, the same images', () => {
    const served = tradesSetManifest() as ReturnType<typeof tradesSetManifest> & { detection: { threshold: number } };
    expect([latest.modelSet.name, latest.modelSet.version]).toEqual([served.name, '1.4.0']);
    expect(served.version).toBe('1.4.0');
    expect(latest.modelSet.manifestThreshold).toBe(served.detection.threshold);
    expect(latest.klThresholdCheck.recomputed).toBe(served.detection.threshold);
    expect(latest.data.rows).toEqual(run.data.rows);
    expect(latest.config).toEqual(run.config);
    expect(latest.settings.map((s) => s.setting)).toEqual(run.settings.map((s) => s.setting));
    expect(readFileSync(join(dir, 'served-1.4.0', 'summary.md'), 'utf8')).toBe(detectorsMarkdown(latest));
  });

  it('the README’s 1.4.0 table is the run’s, each rate and interval recounted', () => {
    const text = readFileSync(join(dir, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    // each cell as "rate % [Wilson interval]", bold marks aside
    const plain = text.replace(/\*\*/g, '');
    const cell = (k: number, n: number) => `${((100 * k) / n).toFixed(1)} % [${wilson(k, n).map((v) => (v * 100).toFixed(1)).join(', ')}]`;
    const stated: Array<[string, number, number, number, number]> = [
      ['undefended', 393, 464, 363, 304],
      ['detector-aware', 30, 450, 16, 22],
      ['feature-aware', 49, 450, 3, 0],
    ];
    for (const [name, successful, attacked, kl, feature] of stated) {
      const s = latest.settings.find((x) => x.setting === name)!;
      expect([s.successful, s.attacked, s.scores.kl.detected, s.scores['feature-mse'].detected]).toEqual([successful, attacked, kl, feature]);
      expect(plain).toContain(`(${successful} / ${attacked}) | ${cell(kl, successful)}`);
      expect(plain).toContain(`| ${cell(feature, successful)}`);
    }
    const undefended = latest.settings.find((x) => x.setting === 'undefended')!;
    expect(undefended.scores.kl.auc!.toFixed(3)).toBe('0.979');
    expect(text).toContain('AUC 0.979 against BIM-10 at ε = 0.05 in the undefended setting (goal ≥ 0.95; 1.3.0: 0.987)');
    expect(undefended.versusKl['feature-mse']).toMatchObject({ onlyCandidate: 20, onlyKl: 79 });
  });
});

describe('reports/fashion-mnist-detectors/served-1.5.0', () => {
  const latest = JSON.parse(readFileSync(join(dir, 'served-1.5.0', 'detectors.json'), 'utf8')) as DetectorResults;

  it('is the same run on the set served since 1.5.0: its version, its KL threshold, the same images', () => {
    const served = servedSetManifest() as ReturnType<typeof servedSetManifest> & { detection: { threshold: number } };
    expect([latest.modelSet.name, latest.modelSet.version, served.version]).toEqual([served.name, '1.5.0', '1.5.0']);
    expect(latest.modelSet.manifestThreshold).toBe(served.detection.threshold);
    expect(latest.klThresholdCheck.recomputed).toBe(served.detection.threshold);
    expect(latest.data.rows).toEqual(run.data.rows);
    expect(latest.config).toEqual(run.config);
    expect(readFileSync(join(dir, 'served-1.5.0', 'summary.md'), 'utf8')).toBe(detectorsMarkdown(latest));
  });

  it('the README’s 1.5.0 table and the noise-draw comparison are the run’s, recounted', () => {
    const text = readFileSync(join(dir, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    const plain = text.replace(/\*\*/g, '');
    const cell = (k: number, n: number) => `${((100 * k) / n).toFixed(1)} % [${wilson(k, n).map((v) => (v * 100).toFixed(1)).join(', ')}]`;
    const stated: Array<[string, number, number, number, number]> = [
      ['undefended', 393, 464, 368, 347],
      ['detector-aware', 33, 453, 17, 24],
      ['feature-aware', 36, 453, 1, 0],
    ];
    for (const [name, successful, attacked, kl, feature] of stated) {
      const s = latest.settings.find((x) => x.setting === name)!;
      expect([s.successful, s.attacked, s.scores.kl.detected, s.scores['feature-mse'].detected]).toEqual([successful, attacked, kl, feature]);
      const vs = s.versusKl['feature-mse'];
      const p = vs.pValue >= 0.001 ? String(Number(vs.pValue.toPrecision(2))) : '< 0.001';
      expect(plain).toContain(`(${successful} / ${attacked}) | ${cell(kl, successful)}`);
      expect(plain).toContain(`| ${cell(feature, successful)} (${vs.onlyCandidate} vs ${vs.onlyKl}, p = ${p})`);
    }
    const undefended = latest.settings.find((x) => x.setting === 'undefended')!;
    expect(undefended.scores.kl.auc!.toFixed(3)).toBe('0.983');
    expect(text).toContain('AUC 0.983 against BIM-10 at ε = 0.05 in the undefended setting (goal ≥ 0.95; 1.4.0: 0.979)');
    const noise = (name: string) => latest.settings.find((x) => x.setting === name)!.versusKl['kl-noise'];
    expect([noise('undefended').onlyCandidate, noise('undefended').onlyKl, noise('undefended').pValue.toFixed(3)]).toEqual([10, 2, '0.039']);
    expect([noise('detector-aware').onlyCandidate, noise('detector-aware').onlyKl, noise('detector-aware').pValue.toFixed(3)]).toEqual([9, 2, '0.065']);
    expect(text).toContain('(95.7 %, 10 vs 2 images, p = 0.039) and KL-aware ones (72.7 %, 9 vs 2, p = 0.065)');
  });
});
