import { apgd } from '../../src/attacks/apgd';
import { JointOracle, RefusalRule } from '../../src/attacks/joint';
import { GradientOracle, GradientRequest, OnnxGradientOracle, judgeWith } from '../../src/attacks/oracle';
import { gridImages, linearClassifier, logitsOf, predictions, seeded, worstMargin } from './models';

/**
 * The attacker who knows the detector: APGD through a JointOracle with the
 * detector's refusal rule counts an example as a success only where the
 * judged model is wrong and the detector lets it pass.
 *
 * Known answer. The judged model a and the other model b are linear with
 * the same weights; b's bias favours class 0 by δ. The detector refuses an
 * input where a and b disagree. For an image of class 0, both margins move
 * along the same direction, b's sitting δ above a's, so the worst case over
 * the L∞ ball (closed form, the corner of apgd.test.ts) is wrong *and*
 * unrefused iff a's worst margin + δ < 0 — while a alone can be fooled as
 * soon as a's worst margin < 0. The images in between are those an attacker
 * blind to the detector fools only into being caught.
 */
const shape: [number, number, number] = [1, 6, 6];
const d = 36;

/** Counts gradient requests per image id (every APGD iteration asks once per image it still attacks). */
class Counting implements GradientOracle {
  readonly calls = new Map<number, number>();
  readonly name: string;
  readonly imageSize: number;
  readonly numClasses: number;
  constructor(private readonly inner: GradientOracle) {
    this.name = inner.name;
    this.imageSize = inner.imageSize;
    this.numClasses = inner.numClasses;
  }
  gradient(req: GradientRequest) {
    for (const id of req.ids) this.calls.set(id, (this.calls.get(id) ?? 0) + 1);
    return this.inner.gradient(req);
  }
  logits(x: Float32Array, ids: readonly number[], step: number) {
    return this.inner.logits(x, ids, step);
  }
  judge(x: Float32Array, ids: readonly number[], step: number) {
    return judgeWith(this.inner, x, ids, step);
  }
  async release() {}
}

describe('APGD against a detector it knows (JointOracle with a refusal rule)', () => {
  const k = 3;
  const rnd = seeded(11);
  // A third class held far below the others: DLR needs three classes, and this one never competes.
  const w = [Array.from({ length: d }, () => rnd()), Array.from({ length: d }, () => rnd()), Array.from({ length: d }, () => 0)];
  const delta = 0.1;
  const ba = [0, 0, -100];
  const bb = [delta, 0, -100];
  const a = OnnxGradientOracle.fromForward('a', linearClassifier(w, ba, shape));
  const b = OnnxGradientOracle.fromForward('b', linearClassifier(w, bb, shape));
  afterAll(async () => {
    await a.release();
    await b.release();
  });
  const disagree: RefusalRule = (za, zb) => {
    const pa = predictions(za, k);
    const pb = predictions(zb, k);
    return Uint8Array.from(pa, (p, i) => (p !== pb[i] ? 1 : 0));
  };
  const eps = 8 / 255;

  // Class-0 images (a's prediction), none on a knife's edge for either model.
  const all = 200;
  const xAll = gridImages(all, d, 41);
  const keep: number[] = [];
  const foolable: boolean[] = [];
  const unrefusable: boolean[] = [];
  for (let i = 0; i < all; i++) {
    const xi = xAll.subarray(i * d, (i + 1) * d);
    const z = logitsOf(w, ba, xi);
    if (!(z[0] > z[1])) continue;
    const m = worstMargin(w, ba, xi, 0, 1, eps);
    if (Math.abs(m) < 0.02 || Math.abs(m + delta) < 0.02) continue;
    keep.push(i);
    foolable.push(m < 0);
    unrefusable.push(m + delta < 0);
  }
  const n = keep.length;
  const x = new Float32Array(n * d);
  keep.forEach((i, j) => x.set(xAll.subarray(i * d, (i + 1) * d), j * d));
  const labels = new Int32Array(n);
  const ids = keep;

  it('has images of all three kinds: safe, fooled only into being caught, fooled past the detector', () => {
    const caughtOnly = foolable.filter((f, i) => f && !unrefusable[i]).length;
    expect(foolable.filter((f) => !f).length).toBeGreaterThan(3);
    expect(caughtOnly).toBeGreaterThan(3);
    expect(unrefusable.filter(Boolean).length).toBeGreaterThan(3);
  });

  it('the oracle reports the rule: the gradient result and its judgement carry the same refusals', async () => {
    const joint = new JointOracle(a, b, disagree);
    const r = await joint.gradient({ x, labels, loss: 'cross-entropy', ids, step: 0 });
    const j = await joint.judge!(x, ids, 0);
    expect(Array.from(r.refused!)).toEqual(Array.from(j.refused!));
    expect(Array.from(j.logits)).toEqual(Array.from(await a.logits(x, ids, 0)));
    // clean images: both models say class 0, nothing refused
    expect(r.refused!.every((v) => v === 0)).toBe(true);
    expect(new JointOracle(a, b).judge).toBeUndefined();
  });

  it.each(['cross-entropy', 'dlr'] as const)('succeeds (wrong and unrefused) on exactly the images the closed form allows (%s)', async (loss) => {
    const joint = new JointOracle(a, b, disagree);
    const adv = await apgd({ iterations: 20, loss }).run(joint, { x, labels, ids }, { eps, targeted: false, seed: 1 });
    const j = await joint.judge!(adv, ids, 0);
    const pred = predictions(j.logits, k);
    const success = pred.map((p, i) => p !== labels[i] && !j.refused![i]);
    expect(success).toEqual(unrefusable);
    expect(Math.max(...Array.from(adv, (v, i) => Math.abs(v - x[i])))).toBeLessThanOrEqual(eps + 1e-6);
  });

  it('keeps attacking what the detector refuses: a refused success is no success, so the next restart tries again', async () => {
    const refuseAll: RefusalRule = (za) => new Uint8Array(za.length / k).fill(1);
    const blind = new Counting(new JointOracle(a, b));
    const aware = new Counting(new JointOracle(a, b, refuseAll));
    const attack = apgd({ iterations: 5, restarts: 2 });
    await attack.run(blind, { x, labels, ids }, { eps, targeted: false, seed: 2 });
    await attack.run(aware, { x, labels, ids }, { eps, targeted: false, seed: 2 });
    // 6 requests per restart (the start and 5 steps)
    ids.forEach((id, i) => {
      expect(aware.calls.get(id)).toBe(12);
      expect(blind.calls.get(id)).toBe(foolable[i] ? 6 : 12);
    });
  });
});
