import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CertifyingModel, servedBase } from '../../src/certify/certifying-model';
import { seededNoise } from '../../src/certify/noise-source';
import { loadModelSet } from '../../src/models/loader';
import { OverloadError } from '../../src/serving/batcher';

/** The service's smoothed classifier: which base it smooths, and admission of whole requests. */

const SET = join(__dirname, '..', '..', 'models', 'fashion-mnist');
const policy = { n: 100, maxN: 1000, n0: 20, alpha: 0.001, maxAlpha: 0.01, sigma: 0.25, batch: 50 };

it('smooths the set’s defence: f ∘ s for the default set', async () => {
  const set = await loadModelSet(SET);
  expect(servedBase(set.manifest)).toBe('f∘s');
  expect(servedBase({ ...set.manifest, defence: { chain: [{ stage: 'noise' }, { stage: 'autoencoder' }] } })).toBe('f∘ae');
  expect(servedBase({ ...set.manifest, defence: { chain: [{ stage: 'noise' }] } })).toBe('f');
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
