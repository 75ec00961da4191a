import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FASHION_MNIST_LABELS } from '../../src/data/fashionMnist';
import { loadModelSet } from '../../src/models/loader';
import { Manifest } from '../../src/models/manifest';
import { loadModel } from '../../src/onnx/io';
import { Graph } from '../../src/onnx/graph';
import { DEFAULT_RECIPE, namedRecipe, stage2Of, stage2Record } from '../../src/pipeline/default-set';
import { STAGE2_RECIPE_METADATA } from '../../src/pipeline/recipes/recipe';
import { smoothingTrainingRecord } from '../../src/pipeline/smoothing-denoiser';
import { SubsetCounts, evaluateCommittedSet } from './support/committed-eval';

/**
 * The committed model sets: they load (schema and sha256), they are what the
 * manifest says, the S2SNet's encoder is the autoencoder's byte for byte, and
 * — where the full Fashion-MNIST is installed (CI installs it) — their
 * accuracy, PSNR and detection threshold are re-measured on a fixed subset
 * by an evaluation written from scratch (support/committed-eval.ts).
 */
const models = join(__dirname, '..', '..', 'models');
const sets = DEFAULT_RECIPE.classifiers.map((c) => ({ name: c.set, defence: c.defence, smoothing: c.smoothing }));
const fashionDir = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const haveData = existsSync(join(fashionDir, 't10k-images-idx3-ubyte.gz')) || existsSync(join(fashionDir, 't10k-images-idx3-ubyte'));

const subset = JSON.parse(readFileSync(join(__dirname, 'committed-subset.json'), 'utf8')) as { stride: number; sets: Record<string, SubsetCounts> };

interface Recorded {
  testSet: { images: number };
  top1: Record<string, number>;
  psnrDb: Record<string, number>;
  detection: { calibrationImages: number };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const bytes = (g: Graph, name: string) => {
  const t = g.initializers.get(name)!;
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
};

describe.each(sets)('committed model set $name', ({ name, defence, smoothing }) => {
  const dir = join(models, name);

  it('loads: valid manifest, every sha256 matches', async () => {
    const set = await loadModelSet(dir);
    expect(set.manifest.name).toBe(name);
    expect(set.manifest.labels).toEqual([...FASHION_MNIST_LABELS]);
    expect(set.manifest.input).toMatchObject({ channels: 1, height: 28, width: 28, layout: 'NCHW', range: [0, 1] });
    for (const ref of Object.values(set.manifest.files)) expect(sha256(join(dir, ref!.path))).toBe(ref!.sha256);
    const expected = [...(defence === 's2snet' ? ['autoencoder', 'classifier', 'defended', 's2snet'] : ['autoencoder', 'classifier']), ...(smoothing ? ['smoothing'] : [])];
    expect(Object.keys(set.manifest.files).sort()).toEqual(expected);
    expect(set.manifest.version).toBe(DEFAULT_RECIPE.version);
    // The recipe's smoothing denoiser, recorded as the recipe trains it (src/pipeline/default-set.ts).
    if (smoothing) expect(set.manifest.smoothing).toEqual({ sigma: smoothing.sigma, denoiser: 'smoothing', clip: true, training: smoothingTrainingRecord(smoothing, smoothing.settings) });
    else expect(set.manifest.smoothing).toBeUndefined();
    expect(set.manifest.defence.chain).toEqual([{ stage: 'noise' }, { stage: defence }]);
    expect(set.manifest.detection.falsePositiveRate).toBe(0.05);
    expect(set.manifest.detection.threshold).toBeGreaterThan(0);
  });

  if (defence === 's2snet') {
    it("records the stage 2 that the recipe gives this set, and the S2SNet carries it in its metadata", () => {
      const c = DEFAULT_RECIPE.classifiers.find((x) => x.set === name)!;
      const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { metrics: { training: { s2snet: unknown } } };
      expect(m.metrics.training.s2snet).toEqual(stage2Record(stage2Of(DEFAULT_RECIPE, c)));
      const plan = stage2Of(DEFAULT_RECIPE, c);
      const meta = loadModel(join(dir, 's2snet.onnx')).metadata?.[STAGE2_RECIPE_METADATA];
      // S2SNets trained before recipes were recorded in the graph (the paper's stage 2) carry none.
      if (plan.recipe) expect(JSON.parse(meta!)).toMatchObject({ recipe: namedRecipe(plan)!.name, ...plan.settings });
    });

    it('the S2SNet encoder is bit-identical to the autoencoder encoder unless its stage 2 trains it (a named variant); only decoder tensors differ otherwise', () => {
      const ae = loadModel(join(dir, 'autoencoder.onnx'));
      const s = loadModel(join(dir, 's2snet.onnx'));
      const enc = [...ae.initializers.keys()].filter((n) => n.startsWith('encoder.'));
      expect(enc.length).toBeGreaterThan(0);
      const changed = [...ae.initializers.keys()].filter((n) => !bytes(s, n).equals(bytes(ae, n)));
      const encoderChanged = changed.filter((n) => n.startsWith('encoder.'));
      expect(changed.some((n) => n.startsWith('decoder.'))).toBe(true);
      expect(changed.every((n) => n.startsWith('decoder.') || n.startsWith('encoder.'))).toBe(true);
      const plan = stage2Of(DEFAULT_RECIPE, DEFAULT_RECIPE.classifiers.find((x) => x.set === name)!);
      // the variant moves most encoder tensors (a few may stay put, e.g. a batch-norm statistic no gradient reaches)
      if (plan.trainEncoder) expect(encoderChanged.length).toBeGreaterThan(enc.length / 2);
      else expect(encoderChanged).toEqual([]);
    });

    if (smoothing) {
      it('the smoothing denoiser is the autoencoder with its own weights: the encoder bit for bit unless the recipe trains it (a named variant)', () => {
        const ae = loadModel(join(dir, 'autoencoder.onnx'));
        const d = loadModel(join(dir, 'smoothing.onnx'));
        const s = loadModel(join(dir, 's2snet.onnx'));
        const names = [...ae.initializers.keys()];
        expect([...d.initializers.keys()].sort()).toEqual([...names].sort());
        const encoder = names.filter((x) => x.startsWith('encoder.'));
        const encoderChanged = encoder.filter((n) => !bytes(d, n).equals(bytes(ae, n)));
        if (smoothing.trainEncoder) expect(encoderChanged.length).toBeGreaterThan(0);
        else expect(encoderChanged).toEqual([]);
        const decoder = names.filter((x) => x.startsWith('decoder.'));
        expect(decoder.every((n) => !bytes(d, n).equals(bytes(ae, n)) || !bytes(d, n).equals(bytes(s, n)))).toBe(true);
        expect(decoder.some((n) => !bytes(d, n).equals(bytes(s, n)))).toBe(true);
      });
    }

    it('defended.onnx carries the classifier and the S2SNet weights unchanged', () => {
      const d = loadModel(join(dir, 'defended.onnx'));
      const held = new Set([...d.initializers.values()].map((t) => createHash('sha256').update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex')));
      for (const file of ['classifier.onnx', 's2snet.onnx']) {
        const g = loadModel(join(dir, file));
        for (const n of g.initializers.keys()) expect(held.has(createHash('sha256').update(bytes(g, n)).digest('hex'))).toBe(true);
      }
    });
  }

  it('every file is small (the default set stays well under 20 MB)', () => {
    const total = readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
    expect(total).toBeLessThan(12 * 1024 * 1024);
  });

  (haveData ? it : it.skip)('reproduces its recorded counts on the fixed 2,000-image subset, consistent with the full-set metrics of its manifest', async () => {
    // The full 10,000-image evaluation is `s2s train set`'s (it writes the manifest); this test re-measures a fixed fifth of
    // it with code written from scratch, against counts recorded by support/record-committed-subset.ts.
    const expected = subset.sets[name];
    expect(expected).toBeDefined();
    const got = await evaluateCommittedSet(dir, fashionDir, subset.stride);
    // Exact up to a couple of images whose logits tie within float noise across CPUs (kernel choice).
    expect(got.testImages).toBe(expected.testImages);
    expect(got.calibrationImages).toBe(expected.calibrationImages);
    for (const k of Object.keys(expected.correct) as Array<keyof SubsetCounts['correct']>) expect(Math.abs(got.correct[k]! - expected.correct[k]!)).toBeLessThanOrEqual(2);
    for (const k of Object.keys(expected.psnrDb) as Array<keyof SubsetCounts['psnrDb']>) expect(Math.abs(got.psnrDb[k]! - expected.psnrDb[k]!)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(got.aboveThreshold - expected.aboveThreshold)).toBeLessThanOrEqual(2);

    // And the subset agrees with the manifest's full-set figures within sampling error (2,000 of 10,000 images:
    // a top-1 near 0.92 has a standard error of 0.6 points; 1,000 calibration images at 5 % one of 0.7 points).
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    const rec = m.metrics as unknown as Recorded;
    expect(rec.testSet.images).toBe(10000);
    for (const k of Object.keys(got.correct) as Array<keyof SubsetCounts['correct']>) expect(Math.abs(100 * got.correct[k]! / got.testImages - 100 * rec.top1[k])).toBeLessThanOrEqual(2);
    for (const k of Object.keys(got.psnrDb) as Array<keyof SubsetCounts['psnrDb']>) expect(Math.abs(got.psnrDb[k]! - rec.psnrDb[k])).toBeLessThanOrEqual(0.5);
    expect(Math.abs(got.aboveThreshold / got.calibrationImages - (m.detection.falsePositiveRate ?? NaN))).toBeLessThanOrEqual(0.025);
  }, 300_000);
});

describe('clean accuracy of the committed S2SNet sets (as recorded; the test above re-measures them)', () => {
  const top1 = (set: string) => ((JSON.parse(readFileSync(join(models, set, 'manifest.json'), 'utf8')) as Manifest).metrics as unknown as Recorded).top1;

  it('default set: f ≥ 92 % top-1; its TRADES-trained f ∘ s gives up less than 3 points (the issue-15 bound is 1.5: not met, and the README says so)', () => {
    const t = top1('fashion-mnist');
    expect(t.classifier).toBeGreaterThanOrEqual(0.92);
    expect(t.classifier - t.s2snet).toBeLessThan(0.03);
  });

  it("the ResNet set keeps the paper's stage 2 and the targets of issue 4: f ∘ s within 1 point of f, f ∘ AE below both", () => {
    const t = top1('fashion-mnist-resnet');
    expect(Math.abs(t.classifier - t.s2snet)).toBeLessThanOrEqual(0.01);
    expect(t.autoencoder).toBeLessThan(t.s2snet);
  });
});
