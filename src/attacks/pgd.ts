import { Attack, AttackContext, AttackInput, checkInput } from './attack';
import { iterate } from './bim';
import { LossKind, attackObjective, isAdversarial } from './objective';
import { GradientOracle } from './oracle';
import { projectLinf, quantize } from './pixels';
import { streamRng } from './seeding';

/**
 * PGD (Madry et al. 2018): BIM from a uniform random point of the ε-ball,
 * repeated from fresh starts. Per image the first restart whose (quantised)
 * image fools the oracle's model is kept; if none does, the one with the best
 * attack objective. Later restarts only run on images not yet fooled.
 */
export interface PgdParams {
  iterations?: number;
  /** α as a fraction of ε (default 2.5 / iterations: the walk can cross the ball 2.5 times) */
  stepFraction?: number;
  restarts?: number;
  loss?: LossKind;
}

export const PGD_DEFAULTS = { iterations: 20, restarts: 1, loss: 'cross-entropy' as LossKind };

export function pgd(params: PgdParams = {}): Attack {
  const iterations = params.iterations ?? PGD_DEFAULTS.iterations;
  const restarts = params.restarts ?? PGD_DEFAULTS.restarts;
  const fraction = params.stepFraction ?? 2.5 / iterations;
  const loss = params.loss ?? PGD_DEFAULTS.loss;
  if (!(Number.isInteger(iterations) && iterations >= 1)) throw new Error(`pgd: iterations must be a positive integer, got ${iterations}`);
  if (!(Number.isInteger(restarts) && restarts >= 1)) throw new Error(`pgd: restarts must be a positive integer, got ${restarts}`);
  if (!(fraction > 0)) throw new Error(`pgd: step fraction must be > 0, got ${fraction}`);
  return {
    name: 'pgd',
    passes: restarts * (iterations + 1),
    async run(oracle: GradientOracle, input: AttackInput, ctx: AttackContext) {
      const n = checkInput(oracle, input);
      const d = oracle.imageSize;
      const k = oracle.numClasses;
      const best = quantize(input.x, input.x, ctx.eps);
      const bestScore = new Float64Array(n).fill(-Infinity);
      const done = new Uint8Array(n);
      for (let r = 0; r < restarts; r++) {
        const rows = [...Array(n).keys()].filter((i) => !done[i]);
        if (rows.length === 0) break;
        const sub: AttackInput = {
          x: new Float32Array(rows.length * d),
          labels: Int32Array.from(rows, (i) => input.labels[i]),
          ids: rows.map((i) => input.ids[i]),
        };
        const start = new Float32Array(rows.length * d);
        rows.forEach((i, j) => {
          sub.x.set(input.x.subarray(i * d, (i + 1) * d), j * d);
          const rng = streamRng(ctx.seed, 'pgd-start', input.ids[i], r);
          for (let p = 0; p < d; p++) start[j * d + p] = input.x[i * d + p] + (rng.uniform() * 2 - 1) * ctx.eps;
        });
        projectLinf(start, sub.x, ctx.eps);
        const last = await iterate(oracle, sub, start, ctx.eps, { iterations, step: fraction * ctx.eps, loss, targeted: ctx.targeted, firstStep: r * iterations });
        const candidate = quantize(last, sub.x, ctx.eps);
        const logits = await oracle.logits(candidate, sub.ids, r * iterations + iterations);
        rows.forEach((i, j) => {
          const fooled = isAdversarial(logits, k, j, sub.labels[j], ctx.targeted);
          const score = attackObjective(loss, ctx.targeted, logits, k, j, sub.labels[j]);
          if (fooled || score > bestScore[i]) {
            best.set(candidate.subarray(j * d, (j + 1) * d), i * d);
            bestScore[i] = score;
            if (fooled) done[i] = 1;
          }
        });
      }
      return best;
    },
  };
}
