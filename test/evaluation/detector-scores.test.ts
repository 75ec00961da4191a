import { join } from 'node:path';
import { streamRng } from '../../src/attacks/seeding';
import { addNoise } from '../../src/attacks/noise';
import { CandidateScorer } from '../../src/evaluation/detector-candidates';
import { compareDetections, scoreRates } from '../../src/evaluation/detector-rates';
import { penultimateValue, withFeaturesOutput } from '../../src/evaluation/feature-layer';
import { GraphBuilder } from '../../src/onnx/builder';
import { loadModel } from '../../src/onnx/io';
import { klScores, meanSquaredErrors, softmaxL1Distances } from '../../src/pipeline/scores';

/**
 * The candidate detection scores of `s2s eval detectors` on cases small
 * enough to work out by hand, the feature layer found in the committed
 * classifier, and the rates at a calibrated threshold.
 */
const shape = [1, 2, 2];

function classifier() {
  const b = new GraphBuilder('classifier', { seed: 3 });
  const h = b.relu(b.linear(b.flatten(b.input('input', ['N', ...shape])), { out: 5, name: 'hidden' }), 'hidden_relu');
  b.output(b.linear(h, { out: 3, init: 'glorot', name: 'head' }), 'logits');
  return b.build();
}

/** s(x) = x: every score that compares x with s(x) must be exactly 0. */
function identityS2SNet() {
  const b = new GraphBuilder('s2snet');
  b.output(b.op('Identity', [b.input('input', ['N', ...shape])]), 'reconstruction');
  return b.build();
}

/** s(x) = 0.5 everywhere: s ignores its input, so noise in front of it changes nothing. */
function constantS2SNet() {
  const b = new GraphBuilder('s2snet');
  const x = b.input('input', ['N', ...shape]);
  b.output(b.add(b.mul(x, b.scalar(0)), b.scalar(0.5)), 'reconstruction');
  return b.build();
}

const images = Float32Array.from([0, 0.2, 0.6, 1, 0.5, 0.5, 0.5, 0.5, 1, 1, 0, 0]);
const keys = ['a', 'b', 'c'];
const open = (s = identityS2SNet()) => CandidateScorer.open(classifier(), s, shape, { noise: { sigma: 0.1, draws: 3 }, seed: 7, session: { provider: 'cpu', intraOpThreads: 1 } });

describe('candidate scores, by hand', () => {
  it('softmax L1, KL and mean squared error on two-class rows', () => {
    // softmax [0, 0] = (½, ½); softmax [ln 3, 0] = (¾, ¼)
    const p = Float32Array.from([0, 0]);
    const q = Float32Array.from([Math.log(3), 0]);
    expect(softmaxL1Distances(p, q, 2)[0]).toBeCloseTo(0.5, 6);
    expect(klScores(p, q, 2)[0]).toBeCloseTo(0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(0.5 / 0.25), 6);
    expect([...meanSquaredErrors(Float32Array.from([0, 1, 0.5, 0.5]), Float32Array.from([1, 1, 0.5, 0]), 2)]).toEqual([0.5, 0.125]);
  });

  it('an identity S2SNet gives 0 for the KL, both reconstruction errors and the L1', async () => {
    const scorer = await open();
    try {
      const { scores } = await scorer.score(images, keys);
      for (const name of ['kl', 'feature-mse', 'pixel-mse', 'softmax-l1'] as const) expect([...scores[name]]).toEqual([0, 0, 0]);
      // With noise in front of s the KL is that of f(x) against f(clip(x + n)): positive for some image.
      expect(Math.max(...scores['kl-noise'])).toBeGreaterThan(0);
    } finally {
      await scorer.release();
    }
  });

  it('a constant S2SNet: pixel error is the mean of (x − ½)², and noise draws change nothing', async () => {
    const scorer = await open(constantS2SNet());
    try {
      const { scores } = await scorer.score(images, keys);
      const expected = [0, 1, 2].map((i) => [...images.subarray(i * 4, i * 4 + 4)].reduce((a, v) => a + (v - 0.5) ** 2, 0) / 4);
      expected.forEach((e, i) => expect(scores['pixel-mse'][i]).toBeCloseTo(e, 6));
      // s(clip(x + n)) = s(x) for every draw, so the mean over draws is the plain KL.
      scores.kl.forEach((v, i) => expect(scores['kl-noise'][i]).toBeCloseTo(v, 9));
      // Image b is the constant itself: s(b) = b, so every score of b is 0.
      for (const name of ['kl', 'feature-mse', 'pixel-mse', 'softmax-l1'] as const) expect(scores[name][1]).toBe(0);
    } finally {
      await scorer.release();
    }
  });

  it('the noise draws are seeded by image key and draw, not by the batch', async () => {
    const scorer = await open();
    try {
      const whole = (await scorer.score(images, keys)).scores['kl-noise'];
      const alone = (await scorer.score(images.slice(8), ['c'])).scores['kl-noise'];
      expect(alone[0]).toBe(whole[2]);
      // and they are the draws addNoise makes from that stream
      const noisy = new Float32Array(4);
      addNoise(images, 8, 4, { kind: 'gaussian', sigma: 0.1 }, streamRng(7, 'detector-noise', 'c', 0), noisy, 0);
      expect(noisy.some((v, j) => v !== images[8 + j])).toBe(true);
    } finally {
      await scorer.release();
    }
  });
});

describe('feature layer', () => {
  it('is the input of the committed classifier’s last Gemm', () => {
    const f = loadModel(join(__dirname, '..', '..', 'models', 'fashion-mnist', 'classifier.onnx'));
    expect(penultimateValue(f)).toBe('classifier.relu1.out');
    const g = withFeaturesOutput(f);
    expect(g.outputs.map((o) => o.name)).toEqual(['logits', 'features']);
  });

  it('of a two-layer network is the hidden ReLU', () => {
    expect(penultimateValue(classifier())).toBe('hidden_relu.out');
  });

  it('is refused, with the ops listed, when the classifier has no Gemm or MatMul', () => {
    const b = new GraphBuilder('conv-only', { seed: 1 });
    b.output(b.flatten(b.conv(b.input('input', ['N', 1, 4, 4]), { out: 2, kernel: 4, pad: 0 })), 'logits');
    expect(() => penultimateValue(b.build())).toThrow(/has no Gemm or MatMul node.*ops: Conv, Flatten/);
  });
});

describe('rates at the calibrated threshold', () => {
  it('counts detections of successful examples and clean flags against the nearest-rank threshold', () => {
    // 20 calibration scores 0 … 19 at 5 %: the 19th smallest, 18; one calibration image (19) is above it.
    const calibration = Array.from({ length: 20 }, (_, i) => i);
    const r = scoreRates({
      calibration,
      falsePositiveRate: 0.05,
      clean: [1, 19, 2, 3],
      adversarial: [30, 18, 25, 0],
      attacked: [1, 1, 1, 0],
      success: [1, 1, 0, 0],
    });
    expect(r.threshold).toBe(18);
    expect(r.cleanFlagged).toBe(1);
    expect(r.successful).toBe(2);
    expect(r.detected).toBe(1); // 30 > 18; 18 is not above it
    expect(r.outcomes).toBe('10--');
    expect(r.detectionRate).toBe(0.5);
    expect(r.detectionCi[0]).toBeLessThan(0.5);
    expect(r.detectionCi[1]).toBeGreaterThan(0.5);
    const b = scoreRates({ calibration, falsePositiveRate: 0.05, clean: [1, 19, 2, 3], adversarial: [30, 40, 25, 0], attacked: [1, 1, 1, 0], success: [1, 1, 0, 0] });
    expect(compareDetections(b, r)).toEqual({ onlyA: 1, onlyB: 0, pValue: 1 });
  });
});
