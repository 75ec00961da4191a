import { GradientOracle, GradientRequest, GradientResult } from '../../src/attacks/oracle';
import { DetectorScore, PenalisedOracle } from '../../src/attacks/penalised';
import { CandidateScorer } from '../../src/evaluation/detector-candidates';
import { FeatureMseScore, featureMseGraph } from '../../src/evaluation/feature-penalty';
import { GraphBuilder } from '../../src/onnx/builder';

/**
 * The attacker who knows the feature-space detector: the differentiable
 * feature-space error against a closed form and against the candidate
 * scorer's, and the penalised oracle's arithmetic on hand-made parts.
 */
const shape = [1, 2, 2];
const per = 4;
const session = { provider: 'cpu' as const, intraOpThreads: 1 };

/** f: flatten → Gemm 'hidden' (its output is φ, the value feeding the head) → Gemm 'head'. */
function linearClassifier() {
  const b = new GraphBuilder('classifier', { seed: 5 });
  const h = b.linear(b.flatten(b.input('input', ['N', ...shape])), { out: 3, init: 'glorot', name: 'hidden' });
  b.output(b.linear(h, { out: 2, init: 'glorot', name: 'head' }), 'logits');
  return b.build();
}

/** s(x) = a · x */
function scalingS2SNet(a: number) {
  const b = new GraphBuilder('s2snet');
  b.output(b.mul(b.input('input', ['N', ...shape]), b.scalar(a)), 'reconstruction');
  return b.build();
}

const images = Float32Array.from([0, 0.2, 0.6, 1, 0.5, 0.5, 0.5, 0.5, 1, 1, 0, 0.3]);

describe('the feature-space error as a differentiable score', () => {
  it('matches its closed form for a linear f and s(x) = a·x: mean((1 − a) W x)² and its gradient (2/D)(1 − a)² WᵀW x', async () => {
    const f = linearClassifier();
    const w = f.initializers.get('hidden.weight')!.data as Float32Array; // [D=3, 4]
    const a = 0.25;
    const score = await FeatureMseScore.open(f, scalingS2SNet(a), shape, session);
    try {
      const { value, grad } = await score.gradient(images);
      expect([...(await score.value(images))]).toEqual([...value]);
      for (let n = 0; n < 3; n++) {
        const x = images.subarray(n * per, (n + 1) * per);
        const wx = [0, 1, 2].map((d) => (1 - a) * [0, 1, 2, 3].reduce((s, j) => s + w[d * 4 + j] * x[j], 0));
        expect(value[n]).toBeCloseTo(wx.reduce((s, v) => s + v * v, 0) / 3, 6);
        for (let j = 0; j < per; j++) {
          const expected = (2 / 3) * (1 - a) * [0, 1, 2].reduce((s, d) => s + w[d * 4 + j] * wx[d], 0);
          expect(grad[n * per + j]).toBeCloseTo(expected, 6);
        }
      }
    } finally {
      await score.release();
    }
  });

  it('equals the candidate scorer’s feature-mse, and its gradient the finite differences of its value, with a ReLU in f', async () => {
    const b = new GraphBuilder('classifier', { seed: 9 });
    const h = b.relu(b.linear(b.flatten(b.input('input', ['N', ...shape])), { out: 5, name: 'hidden' }), 'hidden_relu');
    b.output(b.linear(h, { out: 3, init: 'glorot', name: 'head' }), 'logits');
    const f = b.build();
    const s = (() => {
      const sb = new GraphBuilder('s2snet');
      const x = sb.input('input', ['N', ...shape]);
      sb.output(sb.add(sb.mul(x, sb.scalar(0.6)), sb.scalar(0.15)), 'reconstruction');
      return sb.build();
    })();
    const score = await FeatureMseScore.open(f, s, shape, session);
    const scorer = await CandidateScorer.open(f, s, shape, { noise: { sigma: 0.1, draws: 1 }, seed: 1, session });
    try {
      const { value, grad } = await score.gradient(images);
      const reference = (await scorer.score(images, ['a', 'b', 'c'])).scores['feature-mse'];
      for (let n = 0; n < 3; n++) expect(value[n]).toBeCloseTo(reference[n], 6);
      const h2 = 1e-3;
      for (let i = 0; i < images.length; i++) {
        const up = Float32Array.from(images);
        const down = Float32Array.from(images);
        up[i] += h2;
        down[i] -= h2;
        const n = Math.floor(i / per);
        const fd = ((await score.value(up))[n] - (await score.value(down))[n]) / (2 * h2);
        expect(grad[i]).toBeCloseTo(fd, 3);
      }
    } finally {
      await score.release();
      await scorer.release();
    }
  });

  it('refuses an S2SNet without an `input`', () => {
    const sb = new GraphBuilder('s2snet');
    sb.output(sb.op('Identity', [sb.input('x', ['N', ...shape])]), 'reconstruction');
    expect(() => featureMseGraph(linearClassifier(), sb.build())).toThrow(/has no input 'input'/);
  });
});

describe('the penalised oracle', () => {
  // judged: loss 1 per image, gradient 1 everywhere; score: value per image, gradient 2 everywhere
  const judged: GradientOracle = {
    name: 'fs',
    imageSize: 2,
    numClasses: 2,
    gradient: async (req: GradientRequest): Promise<GradientResult> => ({ logits: Float32Array.from([1, 0, 0, 1]), loss: Float32Array.from([1, 1]), grad: new Float32Array(req.x.length).fill(1) }),
    logits: async () => Float32Array.from([1, 0, 0, 1]),
    release: async () => undefined,
  };
  const score: DetectorScore = {
    name: 'feature-mse',
    value: async () => Float32Array.from([0.5, 3]),
    gradient: async (x) => ({ value: Float32Array.from([0.5, 3]), grad: new Float32Array(x.length).fill(2) }),
    release: async () => undefined,
  };
  const req: GradientRequest = { x: new Float32Array(4), labels: Int32Array.from([0, 1]), loss: 'cross-entropy', ids: [0, 1], step: 0 };

  it('ascends the loss less weight / threshold times the score, and refuses what scores over the threshold', async () => {
    const o = new PenalisedOracle(judged, score, 2, 3);
    const r = await o.gradient(req);
    // c = 3 / 2: loss 1 − 1.5·0.5 and 1 − 1.5·3; gradient 1 − 1.5·2
    expect([...r.loss]).toEqual([0.25, -3.5]);
    expect([...r.grad]).toEqual([-2, -2, -2, -2]);
    expect([...r.refused!]).toEqual([0, 1]);
    expect([...(await o.judge([] as unknown as Float32Array, [0, 1], 0)).refused!]).toEqual([0, 1]);
    expect([...r.logits]).toEqual([1, 0, 0, 1]);
  });

  it('at weight 0 follows the model’s gradient alone but still refuses flagged examples; bad settings are refused', async () => {
    const r = await new PenalisedOracle(judged, score, 1, 0).gradient(req);
    expect([...r.grad]).toEqual([1, 1, 1, 1]);
    expect([...r.refused!]).toEqual([0, 1]);
    expect(() => new PenalisedOracle(judged, score, 0)).toThrow(/threshold must be positive/);
    expect(() => new PenalisedOracle(judged, score, 1, -1)).toThrow(/weight must be ≥ 0/);
  });
});
