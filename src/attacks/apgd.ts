import { Attack, AttackContext, AttackInput, checkInput, withDefaults } from './attack';
import { LossKind, ascentSign, attackObjective, isAdversarial } from './objective';
import { GradientOracle, GradientResult, judgeWith } from './oracle';
import { projectLinf, quantize } from './pixels';
import { streamRng } from './seeding';

// Bound once: these loops run per pixel, and global lookups are slow inside vm contexts (jest's).
const { abs, ceil, max } = Math;

/**
 * Auto-PGD for L∞ (Croce & Hein 2020, "Reliable evaluation of adversarial
 * robustness with an ensemble of diverse parameter-free attacks", Alg. 1).
 * What makes it stronger than PGD with a fixed step:
 *
 * - the step starts at η = 2ε and is halved per image at checkpoints
 *   w_j = ⌈p_j·N⌉, p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06),
 *   when since the last checkpoint (1) the objective rose in fewer than
 *   ρ = 75 % of the steps, or (2) the step was not halved at the last
 *   checkpoint and the best objective has not improved since; after a
 *   halving the walk restarts from the best point found so far;
 * - momentum: z = P(x_k + η·sign ∇), x_{k+1} = P(x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1})),
 *   α = 0.75 (the first step is a plain projected sign step);
 * - the loss: cross-entropy, or DLR (objective.ts), which is scale-invariant
 *   and so does not stall on saturated softmax outputs.
 *
 * Restarts begin at x + ε·t/‖t‖∞, t uniform in [−1, 1]^d, drawn per image
 * (seeding.ts), and run only on images not yet fooled. Per image the attack
 * returns the best-objective iterate rounded to the 8-bit grid if that fools
 * the oracle's model, else the first fooling iterate rounded if that still
 * fools, else the best-objective one. (Returning the first fooling iterate,
 * as AutoAttack does without a grid, lost half the successes on the default
 * classifier: it sits on the decision boundary, and rounding undoes it.)
 * "Fools" means the model is wrong and, where the oracle fronts a detector
 * (oracle.ts `Judgement`), the detector does not refuse the input.
 * Everything is per image, so the result does not depend on the batch.
 */
export interface ApgdParams {
  iterations?: number;
  restarts?: number;
  loss?: LossKind;
  /** fraction of steps since the last checkpoint in which the objective must have risen (ρ) */
  rho?: number;
  /** momentum weight of the new step (α) */
  alpha?: number;
  /**
   * APGD-T: > 0 runs the targeted DLR loss against each of the this many
   * classes the clean image ranks highest after its label (restarts each),
   * still judged as an untargeted attack. An untargeted loss heads for
   * whichever wrong class is nearest in the gradient's view and can miss a
   * class that is nearer in the ball; aiming at each in turn does not.
   */
  targetClasses?: number;
}

export const APGD_DEFAULTS = { iterations: 100, restarts: 1, loss: 'cross-entropy' as LossKind, rho: 0.75, alpha: 0.75, targetClasses: 0 };

/** The checkpoint iterations ⌈p_j·N⌉ ≤ N (excluding 0), strictly increasing. */
export function apgdCheckpoints(iterations: number): number[] {
  const p = [0, 0.22];
  while (p[p.length - 1] < 1) {
    const a = p[p.length - 1];
    const b = p[p.length - 2];
    p.push(a + max(a - b - 0.03, 0.06));
  }
  const out: number[] = [];
  for (const v of p.slice(1)) {
    // The small slack keeps float noise in p (0.57 = 0.5700…01) from moving a checkpoint one step.
    const w = ceil(v * iterations - 1e-9);
    if (w <= iterations && (out.length === 0 || w > out[out.length - 1])) out.push(w);
  }
  return out;
}

export function apgd(params: ApgdParams = {}): Attack {
  const o = withDefaults(APGD_DEFAULTS, params);
  if (!(Number.isInteger(o.iterations) && o.iterations >= 1)) throw new Error(`apgd: iterations must be a positive integer, got ${o.iterations}`);
  if (!(Number.isInteger(o.restarts) && o.restarts >= 1)) throw new Error(`apgd: restarts must be a positive integer, got ${o.restarts}`);
  if (!(o.rho > 0 && o.rho <= 1)) throw new Error(`apgd: ρ must be in (0, 1], got ${o.rho}`);
  if (!(o.alpha > 0 && o.alpha <= 1)) throw new Error(`apgd: α must be in (0, 1], got ${o.alpha}`);
  if (!(Number.isInteger(o.targetClasses) && o.targetClasses >= 0)) throw new Error(`apgd: target classes must be an integer ≥ 0, got ${o.targetClasses}`);
  const targetedLoss = o.targetClasses > 0;
  if (targetedLoss) o.loss = 'dlr-targeted';
  else if (o.loss === 'dlr-targeted') throw new Error('apgd: the dlr-targeted loss needs targetClasses ≥ 1');
  const checkpoints = new Set(apgdCheckpoints(o.iterations));
  const runs: { restart: number; rank: number }[] = [];
  for (let t = 1; t <= max(1, o.targetClasses); t++) for (let r = 0; r < o.restarts; r++) runs.push({ restart: r, rank: targetedLoss ? t : 0 });
  return {
    name: targetedLoss ? 'apgd-t' : o.loss === 'cross-entropy' ? 'apgd-ce' : `apgd-${o.loss}`,
    passes: runs.length * (o.iterations + 2) + (targetedLoss ? 1 : 0),
    async run(oracle: GradientOracle, input: AttackInput, ctx: AttackContext) {
      const n = checkInput(oracle, input);
      const d = oracle.imageSize;
      const k = oracle.numClasses;
      if (targetedLoss && ctx.targeted) throw new Error('apgd-t is an untargeted attack (it picks its own targets)');
      if (targetedLoss && o.targetClasses > k - 1) throw new Error(`apgd-t: ${o.targetClasses} target classes, but the model has only ${k - 1} besides the label`);
      const sign = ascentSign(o.loss, ctx.targeted);
      const best = quantize(input.x, input.x, ctx.eps);
      const bestScore = new Float64Array(n).fill(-Infinity);
      const done = new Uint8Array(n);
      // APGD-T's targets: the classes ranked by the clean image's logits, the label left out.
      const ranked = targetedLoss ? await oracle.logits(input.x, input.ids, 0) : null;
      const targetOf = (i: number, rank: number) => {
        const z = ranked!.subarray(i * k, (i + 1) * k);
        const order = Array.from({ length: k }, (_, j) => j).filter((j) => j !== input.labels[i]).sort((a, b) => z[b] - z[a] || a - b);
        return order[rank - 1];
      };
      for (let q = 0; q < runs.length; q++) {
        const { restart: r, rank } = runs[q];
        const rows = [...Array(n).keys()].filter((i) => !done[i]);
        if (rows.length === 0) break;
        const sub: AttackInput = {
          x: new Float32Array(rows.length * d),
          labels: Int32Array.from(rows, (i) => input.labels[i]),
          ids: rows.map((i) => input.ids[i]),
        };
        const targets = rank > 0 ? Int32Array.from(rows, (i) => targetOf(i, rank)) : undefined;
        const start = new Float32Array(rows.length * d);
        rows.forEach((i, j) => {
          sub.x.set(input.x.subarray(i * d, (i + 1) * d), j * d);
          const rng = streamRng(ctx.seed, 'apgd-start', input.ids[i], r, rank);
          let norm = 0;
          for (let p = 0; p < d; p++) {
            const t = rng.uniform() * 2 - 1;
            start[j * d + p] = t;
            norm = max(norm, abs(t));
          }
          for (let p = 0; p < d; p++) start[j * d + p] = input.x[i * d + p] + (ctx.eps * start[j * d + p]) / (norm || 1);
        });
        projectLinf(start, sub.x, ctx.eps);
        const w = await walk(oracle, sub, start, { ...o, sign, eps: ctx.eps, targeted: ctx.targeted, checkpoints, firstStep: q * (o.iterations + 1), targets });
        // The best-objective iterate lies deep in the adversarial region and survives rounding to the
        // grid; the first fooling iterate may sit on the boundary, which rounding can undo. Try the
        // former first, the latter where it fails.
        const onGrid = quantize(w.best, sub.x, ctx.eps);
        const { logits, refused } = await judgeWith(oracle, onGrid, sub.ids, (q + 1) * (o.iterations + 1));
        const succeeds = (z: Float32Array, no: Uint8Array | undefined, m: number, j: number) => isAdversarial(z, k, m, sub.labels[j], ctx.targeted) && !no?.[m];
        const second = [...rows.keys()].filter((j) => w.fooled[j] && !succeeds(logits, refused, j, j));
        const fallback = new Map<number, { x: Float32Array; fooled: boolean; score: number }>();
        if (second.length) {
          const fx = new Float32Array(second.length * d);
          const x0 = new Float32Array(second.length * d);
          second.forEach((j, m) => {
            fx.set(w.firstFooled.subarray(j * d, (j + 1) * d), m * d);
            x0.set(sub.x.subarray(j * d, (j + 1) * d), m * d);
          });
          const g = quantize(fx, x0, ctx.eps);
          const z = await judgeWith(oracle, g, second.map((j) => sub.ids[j]), (q + 1) * (o.iterations + 1));
          second.forEach((j, m) => {
            fallback.set(j, { x: g.slice(m * d, (m + 1) * d), fooled: succeeds(z.logits, z.refused, m, j), score: attackObjective(o.loss, ctx.targeted, z.logits, k, m, sub.labels[j]) });
          });
        }
        rows.forEach((i, j) => {
          const f = fallback.get(j);
          const useFallback = f?.fooled === true;
          const fooled = useFallback || succeeds(logits, refused, j, j);
          const score = useFallback ? f!.score : attackObjective(o.loss, ctx.targeted, logits, k, j, sub.labels[j]);
          if (fooled || score > bestScore[i]) {
            best.set(useFallback ? f!.x : onGrid.subarray(j * d, (j + 1) * d), i * d);
            bestScore[i] = score;
            if (fooled) done[i] = 1;
          }
        });
      }
      return best;
    },
  };
}

interface WalkOptions {
  iterations: number;
  loss: LossKind;
  rho: number;
  alpha: number;
  /** +1 to ascend the oracle's loss, −1 to descend */
  sign: number;
  eps: number;
  targeted: boolean;
  checkpoints: Set<number>;
  firstStep: number;
  targets?: Int32Array;
}

/** One APGD run from `start`: per image the best-objective iterate and the first fooling one (both off the grid). */
async function walk(oracle: GradientOracle, input: AttackInput, start: Float32Array, o: WalkOptions): Promise<{ best: Float32Array; firstFooled: Float32Array; fooled: Uint8Array }> {
  const n = input.labels.length;
  const d = oracle.imageSize;
  const k = oracle.numClasses;
  const x0 = input.x;
  const request = (x: Float32Array, step: number) => oracle.gradient({ x, labels: input.labels, loss: o.loss, ids: input.ids, step: o.firstStep + step, targets: o.targets });

  let cur = Float32Array.from(start);
  let prev = Float32Array.from(start);
  let r = await request(cur, 0);
  let grad = Float32Array.from(r.grad);
  const objective = Float64Array.from(r.loss, (v) => o.sign * v);
  const bestObjective = Float64Array.from(objective);
  const bestX = Float32Array.from(cur);
  const bestGrad = Float32Array.from(grad);
  const fooledX = new Float32Array(cur.length);
  const fooled = new Uint8Array(n);
  // An input the oracle's detector refuses is no success, however wrong the model is on it.
  const markFooled = (res: GradientResult, x: Float32Array) => {
    for (let i = 0; i < n; i++) {
      if (fooled[i] || res.refused?.[i] || !isAdversarial(res.logits, k, i, input.labels[i], o.targeted)) continue;
      fooled[i] = 1;
      fooledX.set(x.subarray(i * d, (i + 1) * d), i * d);
    }
  };
  markFooled(r, cur);

  const step = new Float64Array(n).fill(2 * o.eps);
  const rises = new Int32Array(n);
  let lastCheckpoint = 0;
  const halvedAtLast = new Uint8Array(n);
  const bestAtLast = Float64Array.from(bestObjective);
  const next = new Float32Array(cur.length);

  for (let t = 0; t < o.iterations; t++) {
    const a = t === 0 ? 1 : o.alpha;
    for (let i = 0; i < n; i++) {
      const eta = step[i];
      for (let p = i * d; p < (i + 1) * d; p++) {
        const lo = max(0, x0[p] - o.eps);
        const hi = Math.min(1, x0[p] + o.eps);
        const g = grad[p] * o.sign;
        let z = cur[p] + (g > 0 ? eta : g < 0 ? -eta : 0);
        z = z < lo ? lo : z > hi ? hi : z;
        let v = cur[p] + a * (z - cur[p]) + (1 - a) * (cur[p] - prev[p]);
        v = v < lo ? lo : v > hi ? hi : v;
        next[p] = v;
      }
    }
    prev = cur;
    cur = Float32Array.from(next);
    r = await request(cur, t + 1);
    grad = Float32Array.from(r.grad);
    markFooled(r, cur);
    for (let i = 0; i < n; i++) {
      const v = o.sign * r.loss[i];
      if (v > objective[i]) rises[i]++;
      objective[i] = v;
      if (v > bestObjective[i]) {
        bestObjective[i] = v;
        bestX.set(cur.subarray(i * d, (i + 1) * d), i * d);
        bestGrad.set(grad.subarray(i * d, (i + 1) * d), i * d);
      }
    }
    const it = t + 1;
    if (o.checkpoints.has(it) && it < o.iterations) {
      const span = it - lastCheckpoint;
      for (let i = 0; i < n; i++) {
        const oscillating = rises[i] < o.rho * span;
        const stalled = !halvedAtLast[i] && bestObjective[i] <= bestAtLast[i];
        halvedAtLast[i] = oscillating || stalled ? 1 : 0;
        bestAtLast[i] = bestObjective[i];
        rises[i] = 0;
        if (!halvedAtLast[i]) continue;
        step[i] /= 2;
        // Restart from the best point, with no momentum carried over from the walk that is abandoned.
        cur.set(bestX.subarray(i * d, (i + 1) * d), i * d);
        prev.set(bestX.subarray(i * d, (i + 1) * d), i * d);
        grad.set(bestGrad.subarray(i * d, (i + 1) * d), i * d);
        objective[i] = bestObjective[i];
      }
      lastCheckpoint = it;
    }
  }
  return { best: bestX, firstFooled: fooledX, fooled };
}
