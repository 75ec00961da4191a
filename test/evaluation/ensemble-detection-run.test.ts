import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { addNoise, parseNoise } from '../../src/attacks/noise';
import { streamRng } from '../../src/attacks/seeding';
import { EnsembleResults, parseEnsembleSettings, runEnsemble } from '../../src/evaluation/ensemble';
import { openData } from '../../src/pipeline/data';
import { formatJson } from '../../src/evaluation/results';
import { ensembleMarkdown } from '../../src/report/ensemble-summary';
import { FASHION_SMALL } from './model-set';

/**
 * The detector's scores recorded by a small ensemble on the committed
 * default set (4 images, 2 APGD iterations): the clean score of each image
 * is the KL between the committed classifier and the committed f ∘ s
 * (defended.onnx), run here in sessions of their own (with a noise layer,
 * f ∘ s on the documented draw); the detector is scored where the judged
 * model is a service of the set, not for the plain-AE baseline; the
 * tallies agree with the per-image scores.
 */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');

/** KL(softmax a ‖ softmax b) of one row, in float64, written out again on purpose. */
function kl(a: Float32Array, b: Float32Array): number {
  const logSoftmax = (z: Float32Array) => {
    const max = Math.max(...z);
    const lse = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
    return Array.from(z, (v) => v - lse);
  };
  const p = logSoftmax(a);
  const q = logSoftmax(b);
  return p.reduce((s, lp, j) => s + Math.exp(lp) * (lp - q[j]), 0);
}

const base = {
  models,
  data: FASHION_SMALL,
  params: { iterations: 2, restarts: 1, targetClasses: 2 },
  eps: [0.1],
  limit: 4,
  seed: 5,
  batchSize: 4,
  threads: 1,
  progress: false,
  provider: 'cpu' as const,
};

/** f's and f ∘ s's logits of one image, from the committed files in sessions of their own. */
async function committedLogits() {
  const opts = { intraOpNumThreads: 1, executionProviders: ['cpu'] };
  const f = await ort.InferenceSession.create(join(models, 'classifier.onnx'), opts);
  const fs = await ort.InferenceSession.create(join(models, 'defended.onnx'), opts);
  const tensor = (x: Float32Array) => new ort.Tensor('float32', x, [1, 1, 28, 28]);
  return {
    f: async (x: Float32Array) => (await f.run({ input: tensor(x) })).logits.data as Float32Array,
    fs: async (x: Float32Array) => (await fs.run({ input: tensor(x) }, ['logits'])).logits.data as Float32Array,
    release: async () => {
      await f.release();
      await fs.release();
    },
  };
}

async function selectedImages(ids: number[]): Promise<Float32Array> {
  const data = await openData(FASHION_SMALL, { split: 'test', labelled: true });
  return (await data.dataset.get(ids)).images;
}

describe('the KL detector in the ensemble (committed default set)', () => {
  let r: EnsembleResults;
  beforeAll(async () => {
    r = await runEnsemble({ ...base, settings: parseEnsembleSettings('undefended,whitebox,whitebox-bpda,autoencoder'), members: ['apgd-ce', 'apgd-dlr'] });
  }, 300_000);

  it('records each clean score as the KL between f and f ∘ s computed apart', async () => {
    const manifest = JSON.parse(readFileSync(join(models, 'manifest.json'), 'utf8'));
    // classifier.onnx is f itself only because the set normalises with mean 0, std 1
    expect(manifest.input.mean).toEqual([0]);
    expect(manifest.input.std).toEqual([1]);
    expect(r.detection!.threshold).toBe(manifest.detection.threshold);
    const images = await selectedImages(r.images.ids);
    const m = await committedLogits();
    try {
      expect(r.detection!.clean).toHaveLength(4);
      for (let i = 0; i < 4; i++) {
        const x = images.slice(i * 784, (i + 1) * 784);
        expect(r.detection!.clean[i]).toBeCloseTo(kl(await m.f(x), await m.fs(x)), 5);
      }
    } finally {
      await m.release();
    }
  });

  it('with a noise layer, f sees the image as received and f ∘ s the draw it was judged on clean', async () => {
    const noise = parseNoise('gaussian:0.1');
    const noisy = await runEnsemble({ ...base, limit: 2, settings: parseEnsembleSettings('whitebox'), members: ['apgd-ce'], params: { ...base.params, iterations: 1 }, noise, eotSamples: 1 });
    const images = await selectedImages(noisy.images.ids);
    const m = await committedLogits();
    try {
      for (let i = 0; i < 2; i++) {
        const x = images.slice(i * 784, (i + 1) * 784);
        const xn = new Float32Array(784);
        addNoise(x, 0, 784, noise, streamRng(base.seed, 'ensemble-noise', 'clean:fs', noisy.images.ids[i]), xn, 0);
        const expected = kl(await m.f(x), await m.fs(xn));
        expect(noisy.detection!.clean[i]).toBeCloseTo(expected, 5);
        // the noise matters: without it the score is another number
        expect(Math.abs(kl(await m.f(x), await m.fs(x)) - expected)).toBeGreaterThan(1e-4);
      }
    } finally {
      await m.release();
    }
  });

  it('scores the settings judged by f or f ∘ s, and the defended worst case, never the plain-AE baseline', () => {
    const d = r.detection!;
    expect(d.rows.map((x) => x.setting)).toEqual(['undefended', 'whitebox', 'whitebox-bpda']);
    expect(d.combined.map((x) => x.setting)).toEqual(['defended']);
    expect(d.cleanFlagged).toBe(d.clean.filter((s) => s > d.threshold).length);
  });

  it('has an adversarial score for exactly the images attacked, and tallies that follow from them', () => {
    const d = r.detection!;
    for (const x of d.rows) {
      const row = r.rows.find((y) => y.setting === x.setting && y.eps === x.eps)!;
      expect(x.attacked).toBe(row.cleanCorrect);
      expect(x.scores.filter((s) => s !== null)).toHaveLength(row.cleanCorrect);
      expect(x.successful).toBe(row.cleanCorrect - row.robust);
      for (const s of x.scores) if (s !== null) expect(s).toBeGreaterThanOrEqual(0);
      // robust or detected: every robust image, plus the broken ones whose score is above the threshold
      let saved = 0;
      x.scores.forEach((s, i) => {
        const ok = row.outcomes[i] === '1' || (s !== null && s > d.threshold);
        expect(x.outcomes[i]).toBe(ok ? '1' : '0');
        if (ok) saved++;
      });
      expect(x.robustOrDetected).toBe(saved);
      expect(x.robustOrDetected).toBeGreaterThanOrEqual(row.robust);
    }
    const whitebox = d.rows.find((x) => x.setting === 'whitebox')!;
    const bpda = d.rows.find((x) => x.setting === 'whitebox-bpda')!;
    expect(d.combined[0].outcomes).toBe(Array.from(whitebox.outcomes, (c, i) => (c === '1' && bpda.outcomes[i] === '1' ? '1' : '0')).join(''));
  });

  it('writes per-image scores on one line each, null where an image was not attacked', () => {
    expect(r.version).toBe(2);
    const lines = [...formatJson(r.detection).matchAll(/"scores": (.*)/g)];
    expect(lines).toHaveLength(r.detection!.rows.length);
    for (const m of lines) expect(m[1]).toMatch(/^\[(-?[0-9.e+-]+|null)(,(-?[0-9.e+-]+|null))*\],?$/);
  });

  it('the summary shows the detector table', () => {
    const md = ensembleMarkdown(r);
    expect(md).toMatch(/\| setting \| ε \| AUC \| AUC \(successful\) \| successful flagged \| robust \| robust or detected \|/);
    expect(md).toMatch(/\| \*\*defended\*\* \| 0\.1 \|/);
    expect(md).toMatch(/\| whitebox-bpda \| 0\.1 \|/);
  });
});
