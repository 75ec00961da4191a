import * as ort from 'onnxruntime-node';
import { createSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';
import {
  LEARNING_RATE,
  OptimizerConfig,
  ParamSpec,
  STEP,
  buildOptimizerGraph,
  gradName,
  resolveOptimizer,
  stateNames,
  updatedName,
} from '../../src/training/optimizer';

const params: ParamSpec[] = [
  { name: 'conv.weight', dims: [4, 3, 3, 3] },
  { name: 'conv.bias', dims: [4] },
  { name: 'fc.weight', dims: [5, 7] },
];

type Vec = Float64Array;

/** torch.optim.AdamW / SGD step by step in float64, as the reference. */
function referenceStep(cfgIn: OptimizerConfig, p: Vec, g: Vec, s: Vec[], lr: number, t: number): void {
  const cfg = resolveOptimizer(cfgIn);
  if (cfg.kind === 'adamw') {
    const [m, v] = s;
    const bc1 = 1 - Math.pow(cfg.beta1, t);
    const bc2 = 1 - Math.pow(cfg.beta2, t);
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * cfg.weightDecay;
      m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g[i];
      v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g[i] * g[i];
      p[i] -= (lr / bc1) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + cfg.epsilon));
    }
  } else {
    const buf = s[0];
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + cfg.weightDecay * p[i];
      let d = gi;
      if (cfg.momentum > 0) {
        buf[i] = cfg.momentum * buf[i] + gi;
        d = cfg.nesterov ? gi + cfg.momentum * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
}

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

async function compare(cfg: OptimizerConfig, steps: number, lrs: number[]) {
  const session = await createSession(buildOptimizerGraph(params, cfg), { provider: 'cpu', intraOpThreads: 1 });
  const rng = new Rng(7);
  const ref = new Map<string, { p: Vec; s: Vec[] }>();
  const cur = new Map<string, { p: Float32Array; s: Float32Array[] }>();
  for (const p of params) {
    const init = Float32Array.from({ length: size(p.dims) }, () => rng.normal());
    const nStates = stateNames(cfg, p.name).length;
    ref.set(p.name, { p: Float64Array.from(init), s: Array.from({ length: nStates }, () => new Float64Array(init.length)) });
    cur.set(p.name, { p: init, s: Array.from({ length: nStates }, () => new Float32Array(init.length)) });
  }
  let worst = 0;
  for (let t = 1; t <= steps; t++) {
    const lr = lrs[(t - 1) % lrs.length];
    const feeds: Record<string, ort.Tensor> = {
      [LEARNING_RATE]: new ort.Tensor('float32', new Float32Array([lr]), []),
      [STEP]: new ort.Tensor('int64', new BigInt64Array([BigInt(t)]), []),
    };
    for (const p of params) {
      const g = Float32Array.from({ length: size(p.dims) }, () => rng.normal() * 0.1);
      referenceStep(cfg, ref.get(p.name)!.p, Float64Array.from(g), ref.get(p.name)!.s, Math.fround(lr), t);
      const c = cur.get(p.name)!;
      feeds[p.name] = new ort.Tensor('float32', c.p, p.dims);
      feeds[gradName(p.name)] = new ort.Tensor('float32', g, p.dims);
      stateNames(cfg, p.name).forEach((s, i) => (feeds[s] = new ort.Tensor('float32', c.s[i], p.dims)));
    }
    const out = await session.run(feeds);
    for (const p of params) {
      const c = cur.get(p.name)!;
      c.p = out[updatedName(p.name)].data as Float32Array;
      c.s = stateNames(cfg, p.name).map((s) => out[updatedName(s)].data as Float32Array);
      const r = ref.get(p.name)!;
      for (let i = 0; i < c.p.length; i++) worst = Math.max(worst, Math.abs(c.p[i] - r.p[i]) / (1 + Math.abs(r.p[i])));
    }
  }
  await session.release();
  return worst;
}

describe('optimizer graphs match torch.optim semantics', () => {
  it('AdamW with weight decay over several steps and a changing learning rate', async () => {
    const worst = await compare({ kind: 'adamw', weightDecay: 0.05 }, 6, [1e-2, 3e-3, 5e-2]);
    expect(worst).toBeLessThan(2e-6);
  });

  it('AdamW with other betas and no weight decay', async () => {
    const worst = await compare({ kind: 'adamw', beta1: 0.5, beta2: 0.9, epsilon: 1e-6, weightDecay: 0 }, 5, [2e-2]);
    expect(worst).toBeLessThan(2e-6);
  });

  it('SGD with momentum and weight decay', async () => {
    expect(await compare({ kind: 'sgd', momentum: 0.9, weightDecay: 1e-3 }, 6, [0.1, 0.05])).toBeLessThan(2e-6);
  });

  it('SGD with Nesterov momentum', async () => {
    expect(await compare({ kind: 'sgd', momentum: 0.8, nesterov: true }, 5, [0.1])).toBeLessThan(2e-6);
  });

  it('plain SGD keeps no state', async () => {
    expect(stateNames({ kind: 'sgd', momentum: 0 }, 'w')).toEqual([]);
    expect(await compare({ kind: 'sgd', momentum: 0 }, 3, [0.5])).toBeLessThan(2e-6);
  });

  const oneParam = async (cfg: OptimizerConfig, p: number[], g: number[], lr: number, step: number) => {
    const spec = [{ name: 'w', dims: [p.length] }];
    const s = await createSession(buildOptimizerGraph(spec, cfg), { provider: 'cpu' });
    const feeds: Record<string, ort.Tensor> = {
      w: new ort.Tensor('float32', Float32Array.from(p), [p.length]),
      grad_w: new ort.Tensor('float32', Float32Array.from(g), [p.length]),
      learning_rate: new ort.Tensor('float32', new Float32Array([lr]), []),
      step: new ort.Tensor('int64', new BigInt64Array([BigInt(step)]), []),
    };
    for (const n of stateNames(cfg, 'w')) feeds[n] = new ort.Tensor('float32', new Float32Array(p.length), [p.length]);
    const out = await s.run(feeds);
    await s.release();
    return Array.from(out['w.updated'].data as Float32Array);
  };

  it('AdamW decay is decoupled: with a zero gradient the parameter only shrinks by lr·wd', async () => {
    const out = await oneParam({ kind: 'adamw', weightDecay: 0.1 }, [2, -4], [0, 0], 0.5, 1);
    // L2-in-the-gradient (Adam) would move each weight by about lr instead.
    expect(out[0]).toBeCloseTo(2 * (1 - 0.05), 6);
    expect(out[1]).toBeCloseTo(-4 * (1 - 0.05), 6);
  });

  it('AdamW bias correction: the first update has size lr whatever the gradient scale', async () => {
    for (const scale of [1e-4, 1, 1e3]) {
      const out = await oneParam({ kind: 'adamw', weightDecay: 0 }, [1, 1], [scale, -scale], 0.01, 1);
      expect(out[0]).toBeCloseTo(0.99, 5);
      expect(out[1]).toBeCloseTo(1.01, 5);
    }
  });
});
