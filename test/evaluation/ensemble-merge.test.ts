import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import { EnsembleOptions, EnsembleResults, parseEnsembleSettings, runEnsemble } from '../../src/evaluation/ensemble';
import { mergeEnsembleResults } from '../../src/evaluation/ensemble-merge';
import { formatJson } from '../../src/evaluation/results';
import { FASHION_SMALL } from './model-set';

/**
 * Ensemble runs at different ε on the same images, merged, against one run
 * with both ε (committed default set, 4 images, 2 APGD iterations): the
 * merged document is the single run's apart from how long things took —
 * rows, combined rows, paired tests and the detector's block alike.
 */
const root = join(__dirname, '..', '..');
const models = join(root, 'models', 'fashion-mnist');

const base: EnsembleOptions = {
  models,
  data: FASHION_SMALL,
  // both f ∘ s settings and both f ∘ AE settings: combined rows, every paired test, the detector
  settings: parseEnsembleSettings('whitebox,whitebox-bpda,autoencoder,autoencoder-bpda'),
  members: ['apgd-ce', 'apgd-t'],
  params: { iterations: 2, restarts: 1, targetClasses: 2 },
  eps: [0.02, 0.1],
  limit: 4,
  seed: 7,
  batchSize: 4,
  threads: 1,
  progress: false,
  provider: 'cpu',
};

/** As read back from a results file (a NaN score is written as null). */
const asWritten = (r: EnsembleResults) => JSON.parse(formatJson(r)) as EnsembleResults;
const copy = (r: EnsembleResults) => structuredClone(r);

/** The document without what depends on the machine's speed: the run record and each member's seconds. */
function withoutTiming(r: EnsembleResults) {
  const { run: _, ...rest } = asWritten(r);
  return { ...rest, rows: rest.rows.map((x) => ({ ...x, members: x.members.map(({ seconds: _s, ...m }) => m) })) };
}

const quiet = () => {
  const lines: string[] = [];
  return { lines, warn: (l: string) => lines.push(l) };
};

describe('merging ensemble runs at different ε', () => {
  let low: EnsembleResults;
  let high: EnsembleResults;
  let both: EnsembleResults;
  beforeAll(async () => {
    low = asWritten(await runEnsemble({ ...base, eps: [0.02] }));
    high = asWritten(await runEnsemble({ ...base, eps: [0.1] }));
    both = await runEnsemble(base);
  }, 600_000);

  it('equals one run with both ε on the same images, apart from timing', () => {
    const merged = mergeEnsembleResults([high, low], { warn: quiet().warn });
    expect(withoutTiming(merged)).toEqual(withoutTiming(both));
    // what the comparison covers is really there
    expect(merged.combined.map((c) => `${c.setting}@${c.eps}`)).toEqual(['defended@0.02', 'defended@0.1', 'autoencoder-all@0.02', 'autoencoder-all@0.1']);
    expect(merged.comparisons).toHaveLength(6);
    expect(merged.detection!.combined.map((c) => `${c.setting}@${c.eps}`)).toEqual(['defended@0.02', 'defended@0.1']);
    expect(merged.detection!.rows).toHaveLength(4);
  });

  it('sums the cost and keeps each run’s record', () => {
    const merged = mergeEnsembleResults([high, low]);
    expect(merged.run.seconds).toBeCloseTo(low.run.seconds + high.run.seconds, 9);
    expect(merged.run.gradientPasses).toBe(low.run.gradientPasses + high.run.gradientPasses);
    expect(merged.run.parts!.map((p) => p.eps)).toEqual([[0.02], [0.1]]);
    expect(merged.run.parts![0]).toEqual({ ...low.run, eps: [0.02], settings: low.config.settings });
    // a merged document merges again, keeping the original runs' records
    const third = copy(high);
    third.config.eps = [0.05];
    third.rows = third.rows.map((r) => ({ ...r, eps: 0.05 }));
    third.detection!.rows = third.detection!.rows.map((r) => ({ ...r, eps: 0.05 }));
    const again = mergeEnsembleResults([merged, third]);
    expect(again.config.eps).toEqual([0.02, 0.05, 0.1]);
    expect(again.run.parts!.map((p) => p.eps)).toEqual([[0.02], [0.05], [0.1]]);
  });

  it('runs of different settings at one ε: equal to the run of them all, apart from timing', async () => {
    // one run judges f ∘ AE only, the other f ∘ s and f ∘ AE: the clean verdicts are the union, in a single run's order
    const [ae, rest] = await Promise.all(
      ['autoencoder', 'whitebox,whitebox-bpda,autoencoder-bpda'].map(async (names) => asWritten(await runEnsemble({ ...base, eps: [0.02], settings: parseEnsembleSettings(names) }))),
    );
    expect(ae.clean.map((c) => c.model)).toEqual(['fae']);
    const merged = mergeEnsembleResults([ae, rest, high], { warn: quiet().warn });
    expect(withoutTiming(merged)).toEqual(withoutTiming(both));
    expect(merged.run.parts!.map((p) => `${p.eps}: ${p.settings!.join(',')}`)).toEqual([
      '0.02: whitebox,whitebox-bpda,autoencoder-bpda',
      '0.02: autoencoder',
      '0.1: whitebox,whitebox-bpda,autoencoder,autoencoder-bpda',
    ]);
    const refusal = (docs: EnsembleResults[]) => {
      try {
        mergeEnsembleResults(docs, { sources: ['a.json', 'b.json', 'c.json'] });
      } catch (e) {
        expect((e as Error).message).not.toMatch(/\n/);
        return (e as Error).message;
      }
      throw new Error('merged');
    };
    // a hole: autoencoder and whitebox-bpda at 0.02 only
    expect(refusal([high, ae])).toMatch(/^merge: the runs hold whitebox at ε = 0\.1 but not whitebox at ε = 0\.02; merged runs must hold every setting at every ε$/);
    // one (setting, ε) twice
    expect(refusal([ae, low, high])).toMatch(/^merge: autoencoder at ε = 0\.02 is in both a\.json and b\.json/);
    // a clean verdict that differs between two runs that both judged that model
    const other = copy(ae);
    other.clean[0].correct += 1;
    expect(refusal([rest, other, high])).toMatch(/^merge: b\.json and a\.json differ in clean\[fae\]\.correct/);
  }, 600_000);

  it('refuses runs that overlap in ε or differ in anything but ε, naming the field in one line', () => {
    const refusal = (docs: EnsembleResults[]) => {
      try {
        mergeEnsembleResults(docs, { sources: ['a.json', 'b.json'] });
      } catch (e) {
        expect((e as Error).name).toBe('UserError');
        expect((e as Error).message).not.toMatch(/\n/);
        return (e as Error).message;
      }
      throw new Error('merged');
    };
    expect(refusal([low, copy(low)])).toMatch(/ε = 0\.02 is in both a\.json and b\.json/);
    const members = copy(high);
    members.config.members = ['apgd-ce'];
    expect(refusal([low, members])).toMatch(/differ in config\.members/);
    const iterations = copy(high);
    iterations.config.params.iterations = 3;
    expect(refusal([low, iterations])).toMatch(/differ in config\.params\.iterations/);
    const sha = copy(high);
    sha.modelSet.files.classifier = '0'.repeat(64);
    expect(refusal([low, sha])).toMatch(/differ in modelSet\.files\.classifier/);
    const version = copy(high);
    version.modelSet.version = 'other';
    expect(refusal([low, version])).toMatch(/differ in modelSet\.version/);
    const selection = copy(high);
    selection.images.ids[2] += 1;
    expect(refusal([low, selection])).toMatch(/differ in images\.ids\[2\]/);
    const limit = copy(high);
    limit.data.limit = 5;
    expect(refusal([low, limit])).toMatch(/differ in data\.limit/);
    const scores = copy(high);
    scores.detection!.clean[1] = scores.detection!.clean[1] * 1.01 + 1e-3;
    expect(refusal([low, scores])).toMatch(/differ in detection\.clean\[1\]/);
  });

  it('a version 1 run: the merged document is version 1 without detection, and says so in one line', () => {
    const v1 = copy(low);
    v1.version = 1;
    delete v1.detection;
    const log = quiet();
    const merged = mergeEnsembleResults([v1, high], { sources: ['old.json', 'new.json'], warn: log.warn });
    expect(merged.version).toBe(1);
    expect('detection' in merged).toBe(false);
    expect(log.lines).toEqual([expect.stringMatching(/old\.json is version 1 .*leaves out the detection of new\.json$/)]);
    expect(withoutTiming(merged).rows).toEqual(withoutTiming(both).rows);
    expect(withoutTiming(merged).comparisons).toEqual(withoutTiming(both).comparisons);
    // two version 1 runs lose nothing: no line
    const v1high = copy(high);
    v1high.version = 1;
    delete v1high.detection;
    const none = quiet();
    expect(mergeEnsembleResults([v1, v1high], { warn: none.warn }).version).toBe(1);
    expect(none.lines).toEqual([]);
  });

  it('s2s eval merge on ensemble runs writes the merged document and summary.md; mixing kinds, or --shard on an ensemble run, exits 2 with one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2s-ens-merge-'));
    const [a, b, out] = ['a', 'b', 'out'].map((d) => join(dir, d));
    for (const [d, r] of [[a, low], [b, high]] as const) {
      mkdirSync(d);
      writeFileSync(join(d, 'results.json'), formatJson(r));
    }
    const errs: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (errs.push(String(c)), true));
    try {
      expect(await main(['node', 's2s', 'eval', 'merge', a, join(b, 'results.json'), '--out', out])).toBe(0);
      const written = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as EnsembleResults;
      expect(withoutTiming(written)).toEqual(withoutTiming(both));
      const summary = readFileSync(join(out, 'summary.md'), 'utf8');
      expect(summary).toMatch(/\*\*defended\*\*/);
      expect(summary).toMatch(/summed over the 2 runs merged \(ε = 0\.02; 0\.1\)/);

      errs.length = 0;
      const perAttack = join(root, 'reports', 'fashion-mnist', 'results.json');
      expect(await main(['node', 's2s', 'eval', 'merge', a, perAttack, '--out', join(dir, 'mixed')])).toBe(2);
      expect(errs).toHaveLength(1);
      expect(errs[0]).toMatch(/^s2s: merge: .*results\.json is not an ensemble results file but .* is; merge ensemble runs and per-attack shards separately\n$/);

      errs.length = 0;
      const shard = ['node', 's2s', 'eval', '--models', models, '--data', FASHION_SMALL, '--attacks', 'ensemble', '--shard', '0/2', '--out', join(dir, 'shard')];
      expect(await main(shard)).toBe(2);
      expect(errs).toHaveLength(1);
      expect(errs[0]).toMatch(/^s2s: --attacks ensemble does not take --shard/);
    } finally {
      spy.mockRestore();
    }
  });
});
