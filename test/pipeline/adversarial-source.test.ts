import { join } from 'node:path';
import { OnnxGradientOracle } from '../../src/attacks/oracle';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { loadModel } from '../../src/onnx/io';
import { TensorData } from '../../src/onnx/tensor';
import { composeDefended } from '../../src/pipeline/compose';
import { DECODER_PREFIX } from '../../src/pipeline/frozen';
import { adversarialDataset } from '../../src/pipeline/recipes/adversarial-data';
import { currentDefendedSource } from '../../src/pipeline/recipes/adversarial-source';
import { recipeByName } from '../../src/pipeline/recipes/catalogue';
import { AdversarialInputs } from '../../src/pipeline/recipes/recipe';
import { runningStatistics } from '../../src/training/params';
import { createSession } from '../../src/runtime/session';
import * as ort from 'onnxruntime-node';

/**
 * Adversarial inputs against the current f ∘ s: the source must answer for
 * the decoder values it is handed at each batch (not the ones it was built
 * with), and the examples must be adversarial for that model, inside their ε.
 */
const models = join(__dirname, '..', '..', 'models', 'fashion-mnist');
// 1.4.0's S2SNet (decoder trained, encoder the autoencoder's): the served one since 1.5.0 trains its encoder too.
const FROZEN_ENCODER_S2SNET = join(__dirname, '..', '..', 'reports', 'fashion-mnist-worst-case-1.4.0', 'models', 's2snet.onnx');
const data = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');

describe('adversarial inputs against the current f ∘ s', () => {
  const f = loadModel(join(models, 'classifier.onnx'));
  const ae = loadModel(join(models, 'autoencoder.onnx'));
  const s2snet = loadModel(FROZEN_ENCODER_S2SNET);
  const live = [...ae.initializers.keys()].filter((n) => n.startsWith(DECODER_PREFIX));
  const decoderOf = (g: typeof ae) => new Map<string, TensorData>(live.map((n) => [n, g.initializers.get(n)!]));
  const train = loadFashionMnist({ dir: data, split: 'train' });

  it('the live decoder graph covers the decoder parameters and its running statistics', () => {
    const stats = [...runningStatistics(ae)].filter((n) => n.startsWith(DECODER_PREFIX));
    expect(stats.length).toBeGreaterThan(0);
    for (const n of stats) expect(live).toContain(n);
  });

  it('answers for the values bound at each batch: the autoencoder decoder gives f ∘ AE, the S2SNet decoder f ∘ s', async () => {
    let current = decoderOf(ae);
    const source = currentDefendedSource(ae, f, () => current);
    const fAe = OnnxGradientOracle.fromForward('f ∘ AE', composeDefended(ae, f), { intraOpThreads: 1 });
    const fS = OnnxGradientOracle.fromForward('f ∘ s', composeDefended(s2snet, f), { intraOpThreads: 1 });
    try {
      const b = await train.get([0, 1, 2, 3]);
      const max = (a: Float32Array, c: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i])), 0);
      const withAe = await (await source.oracle(0)).logits(b.images, [0, 1, 2, 3], 0);
      expect(max(withAe, await fAe.logits(b.images))).toBeLessThan(1e-4);
      current = decoderOf(s2snet);
      const withS = await (await source.oracle(0)).logits(b.images, [0, 1, 2, 3], 0);
      expect(max(withS, await fS.logits(b.images))).toBeLessThan(1e-4);
      // The two decoders are different models: the check above would not pass by accident.
      expect(max(withS, withAe)).toBeGreaterThan(1e-2);
    } finally {
      await source.release();
      await fAe.release();
      await fS.release();
    }
  });

  it('BPDA: the gradient is f’s at s(x) for the s of the values bound; alternate takes the true gradient on even batches, BPDA on odd ones', async () => {
    const source = currentDefendedSource(ae, f, () => decoderOf(s2snet), 1, 'alternate');
    const fOnly = OnnxGradientOracle.fromForward('f', f, { intraOpThreads: 1 });
    const fS = OnnxGradientOracle.fromForward('f ∘ s', composeDefended(s2snet, f), { intraOpThreads: 1 });
    const sOnly = await createSession(s2snet, { intraOpThreads: 1 });
    try {
      const idx = [0, 1, 2, 3];
      const b = await train.get(idx);
      const labels = Int32Array.from(b.labels!, Number);
      const req = { x: b.images, labels, loss: 'cross-entropy' as const, ids: idx, step: 0 };
      const u = (await sOnly.run({ input: new ort.Tensor('float32', b.images, [4, 1, 28, 28]) }, ['reconstruction'])).reconstruction.data as Float32Array;
      const bpda = await (await source.oracle(1)).gradient(req);
      const expected = await fOnly.gradient({ ...req, x: u });
      const max = (a: Float32Array, c: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i])), 0);
      const scale = expected.grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(max(bpda.grad, expected.grad)).toBeLessThan(1e-4 * scale);
      // The logits are the true f(s(x)): BPDA changes the backward pass only.
      expect(max(bpda.logits, await fS.logits(b.images))).toBeLessThan(1e-4);
      const through = await (await source.oracle(2)).gradient(req);
      expect(max(through.grad, (await fS.gradient(req)).grad)).toBeLessThan(1e-4 * scale);
      expect(max(through.grad, bpda.grad)).toBeGreaterThan(1e-2 * scale);
    } finally {
      await source.release();
      await fOnly.release();
      await fS.release();
      await sOnly.release();
    }
  });

  it('rotate-with-f: the true gradient, BPDA and f’s own gradient at x on batches 0, 1, 2 (mod 3)', async () => {
    const source = currentDefendedSource(ae, f, () => decoderOf(s2snet), 1, 'rotate-with-f');
    const fOnly = OnnxGradientOracle.fromForward('f', f, { intraOpThreads: 1 });
    const fS = OnnxGradientOracle.fromForward('f ∘ s', composeDefended(s2snet, f), { intraOpThreads: 1 });
    try {
      const idx = [4, 5, 6, 7];
      const b = await train.get(idx);
      const req = { x: b.images, labels: Int32Array.from(b.labels!, Number), loss: 'cross-entropy' as const, ids: idx, step: 0 };
      const max = (a: Float32Array, c: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - c[i])), 0);
      const ofF = await fOnly.gradient(req);
      const ofFs = await fS.gradient(req);
      const scale = ofF.grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      for (const batch of [2, 5]) {
        const g = await (await source.oracle(batch)).gradient(req);
        expect(max(g.grad, ofF.grad)).toBeLessThan(1e-4 * scale);
        // the examples are of f alone: its logits, not f ∘ s's
        expect(max(g.logits, ofF.logits)).toBeLessThan(1e-4);
      }
      for (const batch of [0, 3]) expect(max((await (await source.oracle(batch)).gradient(req)).grad, ofFs.grad)).toBeLessThan(1e-4 * scale);
      const bpda = await (await source.oracle(4)).gradient(req);
      expect(max(bpda.logits, ofFs.logits)).toBeLessThan(1e-4);
      expect(max(bpda.grad, ofF.grad)).toBeGreaterThan(1e-2 * scale);
      expect(max(bpda.grad, ofFs.grad)).toBeGreaterThan(1e-2 * scale);
      expect(recipeByName('adversarial-fs', { adversarial: { gradient: 'rotate-with-f' } }).name).toBe('adversarial-fs(pgd-5:0-0.1 vs defended/rotate-with-f, 0.5)');
    } finally {
      await source.release();
      await fOnly.release();
      await fS.release();
    }
  });

  it('PGD examples of the current f ∘ s raise its loss, stay within each image ε, and leave the clean rows as they were', async () => {
    const o: AdversarialInputs = { against: 'defended', attack: 'pgd', epsMin: 0.03, epsMax: 0.06, iterations: 5, fraction: 0.5 };
    const source = currentDefendedSource(ae, f, () => decoderOf(s2snet));
    const ds = adversarialDataset(train, source, o, 3);
    const judge = OnnxGradientOracle.fromForward('f ∘ s', composeDefended(s2snet, f), { intraOpThreads: 1 });
    try {
      const idx = Array.from({ length: 16 }, (_, i) => i);
      const clean = await train.get(idx);
      const adv = await ds.get(idx);
      const per = 784;
      const labels = Int32Array.from(clean.labels!, Number);
      const loss = async (x: Float32Array) => (await judge.gradient({ x, labels, loss: 'cross-entropy', ids: idx, step: 0 })).loss;
      const [l0, l1] = [await loss(clean.images), await loss(adv.images)];
      let raised = 0;
      for (let i = 0; i < 16; i++) {
        let linf = 0;
        for (let p = i * per; p < (i + 1) * per; p++) {
          linf = Math.max(linf, Math.abs(adv.images[p] - clean.images[p]));
          expect(adv.images[p]).toBeGreaterThanOrEqual(0);
          expect(adv.images[p]).toBeLessThanOrEqual(1);
        }
        if (i < 8) {
          expect(linf).toBeLessThanOrEqual(0.06 + 1e-6);
          expect(linf).toBeGreaterThan(0.03 - 1e-6);
          if (l1[i] > l0[i]) raised++;
        } else {
          expect(linf).toBe(0);
          expect(l1[i]).toBeCloseTo(l0[i], 5);
        }
      }
      expect(raised).toBe(8);
      expect(Array.from(adv.labels!)).toEqual(Array.from(clean.labels!));
    } finally {
      await ds.release();
      await judge.release();
    }
  });

  it('--adv-* overrides: a recipe without adversarial inputs gets them against the current f ∘ s, and the name says so', () => {
    const r = recipeByName('paper-ce', { adversarial: { epsMax: 0.08, epsMin: 0.02 } });
    expect(r.adversarial).toEqual({ against: 'defended', attack: 'pgd', epsMin: 0.02, epsMax: 0.08, iterations: 5, fraction: 0.5 });
    expect(r.name).toBe('paper-ce(pgd-5:0.02-0.08 vs defended, 0.5)');
    const g = recipeByName('adversarial-fs', { adversarial: { attack: 'fgsm', epsMax: 0.05, epsMin: 0.05 } });
    expect(g.adversarial).toMatchObject({ attack: 'fgsm', iterations: 1, epsMin: 0.05, epsMax: 0.05 });
    expect(g.name).toBe('adversarial-fs(fgsm:0.05 vs defended/alternate, 0.5)');
    expect(g.description).toMatch(/overridden: adversarial inputs fgsm, ε ~ U\(0\.05, 0\.05\), against the current f ∘ s \(gradient: alternate\), fraction 0\.5 of each batch$/);
    expect(recipeByName('adversarial-fs', {}).name).toBe('adversarial-fs');
    expect(recipeByName('adversarial-fs').adversarial?.gradient).toBe('alternate');
    const b = recipeByName('adversarial-fs', { adversarial: { gradient: 'bpda' } });
    expect(b.name).toBe('adversarial-fs(pgd-5:0-0.1 vs defended/bpda, 0.5)');
    expect(b.description).toMatch(/against the current f ∘ s \(gradient: bpda\)/);
    expect(() => recipeByName('adversarial-f', { adversarial: { gradient: 'bpda' } })).toThrow(/needs examples against the current f ∘ s/);
    expect(() => recipeByName('adversarial-f', { adversarial: { epsMin: 0.2 } })).toThrow(/epsMin must be in \[0, epsMax\]/);
  });
});
