import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DetectorResults } from '../../src/evaluation/detector-comparison';
import { FASHION_SMALL, writeEvalSet } from './model-set';

/**
 * `s2s eval detectors` as users run it (the built CLI, test/support/global-setup.js):
 * 4 images of the small fixture against a random-weight set whose classifier
 * has a normalisation in front, so the feature layer is found in the
 * canonical graph; and one line on stderr, exit 2, for a bad option.
 */
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'eval', 'detectors', ...args], { encoding: 'utf8' });

describe('s2s eval detectors', () => {
  const models = writeEvalSet();
  const common = ['--models', models, '--data', FASHION_SMALL, '--provider', 'cpu', '--threads', '1', '--no-progress'];

  it('writes detectors.json and summary.md for 4 images', () => {
    const out = mkdtempSync(join(tmpdir(), 's2s-detectors-'));
    const r = run(...common, '--limit', '4', '--holdout', '20', '--iterations', '2', '--draws', '2', '--batch-size', '3', '--out', out);
    expect(r.stderr).toMatch(/wrote .*detectors\.json and summary\.md/);
    expect(r.status).toBe(0);
    const doc = JSON.parse(readFileSync(join(out, 'detectors.json'), 'utf8')) as DetectorResults;
    expect(doc.data.selected).toBe(4);
    expect(doc.data.calibrationImages).toBe(20);
    expect(doc.config.featureLayer).toBe('relu.out');
    expect(doc.settings.map((s) => s.setting)).toEqual(['undefended', 'detector-aware', 'feature-aware']);
    expect(doc.config.featureWeight).toBe(1);
    for (const s of doc.settings) {
      for (const c of doc.candidates) {
        expect(s.adversarialScores[c.name]).toHaveLength(4);
        expect(s.scores[c.name].outcomes).toHaveLength(4);
        expect(s.scores[c.name].successful).toBe(s.successful);
      }
    }
    expect(doc.cleanScores.kl).toHaveLength(4);
    expect(existsSync(join(out, 'summary.md'))).toBe(true);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/\| kl-noise \|/);
  });

  it('exits when it is done with its progress bars on (a bar left running used to keep the process alive)', () => {
    const out = mkdtempSync(join(tmpdir(), 's2s-detectors-'));
    const withBars = common.filter((a) => a !== '--no-progress');
    // A hang would block the test runner itself (spawnSync): a generous kill turns it into a failure.
    const r = spawnSync(process.execPath, [cli, 'eval', 'detectors', ...withBars, '--limit', '2', '--holdout', '6', '--iterations', '1', '--draws', '1', '--batch-size', '2', '--out', out], { encoding: 'utf8', timeout: 300_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/calibration/);
    expect(existsSync(join(out, 'detectors.json'))).toBe(true);
  });

  it.each([
    [['--eps', '2'], /--eps/],
    [['--draws', '0'], /--draws/],
    [['--attack', 'fgsm'], /fgsm/],
    [['--feature-weight', '-1'], /--feature-weight/],
  ])('refuses %j in one line, exit 2', (bad, message) => {
    const r = run(...common, '--out', mkdtempSync(join(tmpdir(), 's2s-detectors-bad-')), ...bad);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });

  it('demands --models', () => {
    const r = run('--out', mkdtempSync(join(tmpdir(), 's2s-detectors-bad-')));
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('s2s: eval detectors: --models <dir> is required');
  });
});
