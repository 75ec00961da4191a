import { mergeResults, EvalResults } from '../../src/evaluation/results';
import { runEvaluation, EvalOptions } from '../../src/evaluation/runner';
import { parseSettings } from '../../src/evaluation/settings';
import { FASHION_SMALL, writeEvalSet } from './model-set';

const withoutRun = ({ run: _run, ...rest }: EvalResults) => rest;

describe('the evaluation runner', () => {
  const models = writeEvalSet();
  const base: EvalOptions = {
    models,
    data: FASHION_SMALL,
    attacks: 'fgsm,bim,pgd+eot',
    settings: parseSettings('undefended,whitebox,whitebox-prime,graybox,autoencoder'),
    eps: [0.02, 0.1],
    noise: [{ kind: 'gaussian', sigma: 0.05 }],
    limit: 18,
    seed: 7,
    attackParams: { bim: { iterations: 3 }, pgd: { iterations: 2 } },
    eotSamples: 2,
    gallerySize: 2,
    progress: false,
    provider: 'cpu',
  };
  let whole: EvalResults;
  beforeAll(async () => {
    whole = await runEvaluation({ ...base, batchSize: 8 });
  });

  it('covers every attack × setting × ε × noise once, with counts that add up', () => {
    // fgsm, bim: 5 settings × 2 ε × 2 noise; pgd+eot: only under noise
    expect(whole.entries).toHaveLength(2 * 5 * 2 * 2 + 5 * 2 * 1);
    expect(whole.coverage).toEqual({ evaluated: 18, complete: true });
    for (const e of whole.entries) {
      expect(e.counts.n).toBe(18);
      expect(e.counts.truePositivesFooled).toBeLessThanOrEqual(e.counts.cleanCorrect);
      expect(e.metrics.meanLinf!).toBeLessThanOrEqual(e.eps + 1e-9);
      expect(e.metrics.meanLinf!).toBeGreaterThan(0);
      expect(e.counts.scoreHistogram.reduce((a, b) => a + b, 0)).toBe(18);
    }
    const clean = whole.clean.find((c) => c.model === 'f' && c.noise === 'none')!;
    const und = whole.entries.find((e) => e.attack === 'bim' && e.setting === 'undefended' && e.noise === 'none' && e.eps === 0.1)!;
    expect(und.counts.cleanCorrect).toBe(clean.correct);
    // Undefended BIM at ε = 0.1 on an MLP: the attacked model loses almost everything.
    expect(und.metrics.adversarialAccuracy!).toBeLessThanOrEqual(0.15);
    // Settings that share a gradient source saw the same adversarial images.
    const wbp = whole.entries.find((e) => e.attack === 'bim' && e.setting === 'whitebox-prime' && e.noise === 'none' && e.eps === 0.1)!;
    expect(wbp.counts.linfSum).toBe(und.counts.linfSum);
    expect(wbp.counts.scoreHistogram).toEqual(und.counts.scoreHistogram);
  });

  it('the detector-aware setting attacks f and f ∘ s together, judged on f ∘ s', async () => {
    const r = await runEvaluation({ ...base, attacks: 'bim', settings: parseSettings('whitebox,detector-aware'), noise: [], eps: [0.1], batchSize: 9 });
    const wb = r.entries.find((e) => e.setting === 'whitebox')!;
    const da = r.entries.find((e) => e.setting === 'detector-aware')!;
    expect(da).toMatchObject({ source: 'f+fs', target: 'fs' });
    expect(da.counts.n).toBe(18);
    // Its adversarial images differ from white-box's (other gradients); how
    // well it slips past the detector is measured on the real models (reports/).
    expect(da.counts.linfSum === wb.counts.linfSum && da.counts.l2Sum === wb.counts.l2Sum).toBe(false);
  });

  it('does not depend on the batch size', async () => {
    const other = await runEvaluation({ ...base, batchSize: 5 });
    expect(withoutRun(other)).toEqual(withoutRun(whole));
  });

  it('merging shards 0/3, 1/3, 2/3 gives the unsharded result', async () => {
    const parts: EvalResults[] = [];
    for (const index of [2, 0, 1]) parts.push(await runEvaluation({ ...base, batchSize: 4, shard: { index, count: 3 } }));
    expect(parts.map((p) => p.coverage.evaluated)).toEqual([6, 6, 6]);
    expect(parts.every((p) => !p.coverage.complete)).toBe(true);
    const merged = mergeResults(parts);
    expect(withoutRun(merged)).toEqual(withoutRun(whole));
    expect(merged.run.shards.map((s) => `${s.index}/${s.of}`)).toEqual(['0/3', '1/3', '2/3']);
    expect(() => mergeResults([parts[0], parts[0]])).toThrow(/shard 2\/3 appears in both/);
  });

  it('--attack-limit runs an attack on the first N selected images, identically in shards', async () => {
    const opts: EvalOptions = { ...base, attacks: 'fgsm,cw', noise: [], eps: [0.1], attackParams: { cw: { iterations: 5, searchSteps: 1 } }, attackLimits: { cw: 7 }, batchSize: 4 };
    const one = await runEvaluation(opts);
    const cwEntries = one.entries.filter((e) => e.attack === 'cw');
    expect(cwEntries).toHaveLength(5);
    for (const e of cwEntries) expect(e.counts.n).toBe(7);
    for (const e of one.entries.filter((x) => x.attack === 'fgsm')) expect(e.counts.n).toBe(18);
    expect(one.config.attackLimits).toEqual({ cw: 7 });
    const parts = [];
    for (const index of [0, 1]) parts.push(await runEvaluation({ ...opts, batchSize: 3, shard: { index, count: 2 } }));
    expect(withoutRun(mergeResults(parts))).toEqual(withoutRun(one));
    await expect(runEvaluation({ ...opts, attackLimits: { pgd: 3 } })).rejects.toThrow(/not among --attacks/);
  });

  it('keeps a gallery of the first images and the detector’s clean false-positive rate', () => {
    expect(whole.gallery.images.map((g) => g.id)).toHaveLength(2);
    expect(Buffer.from(whole.gallery.images[0].pixels, 'base64')).toHaveLength(784);
    const items = whole.gallery.items.filter((g) => g.attack === 'bim' && g.id === whole.gallery.images[0].id);
    expect(items.map((g) => g.setting)).toEqual(['undefended', 'whitebox', 'whitebox-prime', 'graybox', 'autoencoder']);
    expect(items.find((g) => g.setting === 'whitebox')!.reconstruction).not.toBeNull();
    expect(items.find((g) => g.setting === 'undefended')!.reconstruction).toBeNull();
    expect(whole.detection!.clean.map((d) => d.noise)).toEqual(['none', 'gaussian:0.05']);
    for (const d of whole.detection!.clean) expect(d.scoreHistogram.reduce((a, b) => a + b, 0)).toBe(18);
  });
});
