import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CertifyingModel, servedBase } from '../../src/certify/certifying-model';
import { seededNoise } from '../../src/certify/noise-source';
import { loadModelSet } from '../../src/models/loader';
import { OverloadError } from '../../src/serving/batcher';
import { GraphBuilder } from '../../src/onnx/builder';
import { attachSmoothing } from '../../src/pipeline/smoothing-denoiser';
import { writeTinySet } from '../models/tiny-set';

/** The service's smoothed classifier: which base it smooths, and admission of whole requests. */

const SET = join(__dirname, '..', '..', 'models', 'fashion-mnist');
const policy = { n: 100, maxN: 1000, n0: 20, alpha: 0.001, maxAlpha: 0.01, sigma: 0.25, batch: 50 };

it('smooths the set’s smoothing denoiser when it has one, else its defence', async () => {
  const set = await loadModelSet(SET);
  expect(servedBase(set.manifest)).toBe('f∘d');
  const { smoothing: _s, ...noSmoothing } = set.manifest;
  expect(servedBase(noSmoothing)).toBe('f∘s');
  expect(servedBase({ ...noSmoothing, defence: { chain: [{ stage: 'noise' }, { stage: 'autoencoder' }] } })).toBe('f∘ae');
  expect(servedBase({ ...noSmoothing, defence: { chain: [{ stage: 'noise' }] } })).toBe('f');
});

it('admits a request whole or refuses it with a 503 before any draw', async () => {
  const m = await CertifyingModel.load(await loadModelSet(SET), { policy, provider: 'cpu', intraOpThreads: 1, maxImages: 4 });
  try {
    const img = () => new Float32Array(784).fill(0.5);
    const settings = { sigma: 0.25, n0: 20, n: 100, alpha: 0.001 };
    const first = m.certifyAll([img(), img(), img()], settings, () => seededNoise(1, 'same'), performance.now() + 600000);
    // 3 of 4 places are taken until the first request ends: 2 more do not fit, 1 does.
    await expect(m.certifyAll([img(), img()], settings, (i) => seededNoise(2, i), performance.now() + 600000)).rejects.toBeInstanceOf(OverloadError);
    const third = m.certifyAll([img()], settings, (i) => seededNoise(3, i), performance.now() + 600000);
    const [a, c] = await Promise.all([first, third]);
    expect(a).toHaveLength(3);
    expect(c).toHaveLength(1);
    // The three images of the first request are identical and seeded alike: identical certificates.
    expect(a[1].countA).toBe(a[0].countA);
    expect(a[0].runs).toBe(3); // 20 selection draws in one run, 100 estimation draws in two of 50
    // Once it is done, the places are free again.
    expect(await m.certifyAll([img(), img(), img(), img()], settings, (i) => seededNoise(4, i), performance.now() + 600000)).toHaveLength(4);
  } finally {
    await m.close();
  }
});

describe('a set with a smoothing denoiser', () => {
  /** A tiny set plus a denoiser d (random weights) attached as the pipeline does it. */
  function setWithSmoothing(sigma: number) {
    const tiny = writeTinySet({ name: 'tiny-smooth' });
    const b = new GraphBuilder('denoiser', { seed: 9 });
    const x = b.input('input', ['N', 1, 28, 28]);
    b.output(b.sigmoid(b.conv(x, { out: 1, kernel: 3, init: 'glorot' })), 'reconstruction');
    attachSmoothing(tiny.dir, b.build(), { sigma, training: { recipe: 'test' }, version: '0.0.2-test' });
    return tiny.dir;
  }

  it('smooths f ∘ d at the σ d was trained for, unless the operator names one', async () => {
    const set = await loadModelSet(setWithSmoothing(0.5));
    expect(set.manifest).toMatchObject({ version: '0.0.2-test', smoothing: { sigma: 0.5, denoiser: 'smoothing', clip: true } });
    expect(servedBase(set.manifest)).toBe('f∘d');
    const { sigma: _s, ...operator } = policy;
    const own = await CertifyingModel.load(set, { policy: operator, provider: 'cpu', intraOpThreads: 1, maxImages: 1 });
    const fixed = await CertifyingModel.load(set, { policy, provider: 'cpu', intraOpThreads: 1, maxImages: 1 });
    try {
      expect([own.base, own.policy.sigma, own.trainedSigma]).toEqual(['f∘d', 0.5, 0.5]);
      expect([fixed.policy.sigma, fixed.trainedSigma]).toEqual([0.25, 0.5]);
      const c = await own.certify(new Float32Array(784).fill(0.5), { sigma: 0.5, n0: 20, n: 50, alpha: 0.001 }, seededNoise(5, 0), performance.now() + 60000);
      expect(c.countA).toBeGreaterThan(0);
    } finally {
      await Promise.all([own.close(), fixed.close()]);
    }
  });

  it('a set without one keeps 0.25 as its default σ', async () => {
    const { sigma: _s, ...operator } = policy;
    const m = await CertifyingModel.load(await loadModelSet(writeTinySet({ name: 'tiny-plain' }).dir), { policy: operator, provider: 'cpu', intraOpThreads: 1, maxImages: 1 });
    try {
      expect([m.base, m.policy.sigma, m.trainedSigma]).toEqual(['f∘s', 0.25, undefined]);
    } finally {
      await m.close();
    }
  });
});
