import { bim } from '../../src/attacks/bim';
import { fgsm } from '../../src/attacks/fgsm';
import { GradientOracle, GradientRequest, OnnxGradientOracle } from '../../src/attacks/oracle';
import { gridImages, mlpClassifier, predictions } from './models';

/** Wraps an oracle and records every image it is asked about. */
function recording(base: GradientOracle, seen: Float32Array[]): GradientOracle {
  return {
    name: base.name,
    imageSize: base.imageSize,
    numClasses: base.numClasses,
    gradient: (req: GradientRequest) => {
      seen.push(Float32Array.from(req.x));
      return base.gradient(req);
    },
    logits: (x, ids, step) => base.logits(x, ids, step),
    release: () => base.release(),
  };
}

describe('BIM', () => {
  const shape: [number, number, number] = [1, 6, 6];
  const k = 5;
  const oracle = OnnxGradientOracle.fromForward('mlp', mlpClassifier(shape, k));
  afterAll(() => oracle.release());
  const n = 12;
  const x = gridImages(n, 36, 11);
  const ids = [...Array(n).keys()];
  let labels: Int32Array;
  beforeAll(async () => {
    labels = Int32Array.from(predictions(await oracle.logits(x, ids, 0), k));
  });

  it.each([0.01, 0.02, 0.05])('never leaves the ε-ball or [0, 1], at any iteration (ε = %p)', async (eps) => {
    const seen: Float32Array[] = [];
    const adv = await bim().run(recording(oracle, seen), { x, labels, ids }, { eps, targeted: false, seed: 0 });
    expect(seen).toHaveLength(10);
    let farthest = 0;
    let low = Infinity;
    let high = -Infinity;
    for (const q of [...seen, adv]) {
      for (let i = 0; i < q.length; i++) {
        farthest = Math.max(farthest, Math.abs(q[i] - x[i]));
        low = Math.min(low, q[i]);
        high = Math.max(high, q[i]);
      }
    }
    expect(farthest).toBeLessThanOrEqual(eps + 1e-6);
    expect(farthest).toBeGreaterThan(eps / 2); // it did move
    expect(low).toBeGreaterThanOrEqual(0);
    expect(high).toBeLessThanOrEqual(1);
    // The evaluated image is on the 8-bit grid.
    expect(Math.max(...Array.from(adv, (v) => Math.abs(v * 255 - Math.round(v * 255))))).toBeLessThan(1e-4);
  });

  it('one iteration with α = ε is FGSM', async () => {
    const a = await bim({ iterations: 1, stepFraction: 1 }).run(oracle, { x, labels, ids }, { eps: 0.03, targeted: false, seed: 0 });
    const b = await fgsm().run(oracle, { x, labels, ids }, { eps: 0.03, targeted: false, seed: 0 });
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('fools most images at ε = 0.1 and at least as many as FGSM at small ε', async () => {
    const adv = await bim().run(oracle, { x, labels, ids }, { eps: 0.1, targeted: false, seed: 0 });
    const p = predictions(await oracle.logits(adv, ids, 0), k);
    expect(p.filter((v, i) => v === labels[i]).length).toBeLessThanOrEqual(n / 4);

    const fooled = async (a: Float32Array) => predictions(await oracle.logits(a, ids, 0), k).filter((v, i) => v !== labels[i]).length;
    const eps = 0.01;
    const byBim = await fooled(await bim().run(oracle, { x, labels, ids }, { eps, targeted: false, seed: 0 }));
    const byFgsm = await fooled(await fgsm().run(oracle, { x, labels, ids }, { eps, targeted: false, seed: 0 }));
    expect(byBim).toBeGreaterThanOrEqual(byFgsm);
  });

  it('targeted BIM reaches the runner-up class', async () => {
    const z = await oracle.logits(x, ids, 0);
    const targets = Int32Array.from(labels, (l, i) => {
      let best = -1;
      for (let j = 0; j < k; j++) if (j !== l && (best < 0 || z[i * k + j] > z[i * k + best])) best = j;
      return best;
    });
    const adv = await bim({ iterations: 20 }).run(oracle, { x, labels: targets, ids }, { eps: 0.2, targeted: true, seed: 0 });
    const p = predictions(await oracle.logits(adv, ids, 0), k);
    expect(p.filter((v, i) => v === targets[i]).length).toBeGreaterThanOrEqual(n - 2);
  });
});
