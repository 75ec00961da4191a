import { Attack, AttackContext, AttackInput, checkInput } from './attack';
import { LossKind, ascentSign } from './objective';
import { GradientOracle } from './oracle';
import { projectLinf, quantize, signStep } from './pixels';

/**
 * BIM (Kurakin et al. 2017): FGSM steps of size α, projected back into the
 * ε-ball and [0, 1] after every step. Also the body of PGD (pgd.ts), which
 * only adds a random start and restarts.
 */
export interface BimParams {
  iterations?: number;
  /** α as a fraction of ε (default 1/4, docs/protocol.md, "Attacks": the paper's range is ε/4 … ε/10) */
  stepFraction?: number;
  loss?: LossKind;
}

export const BIM_DEFAULTS = { iterations: 10, stepFraction: 0.25, loss: 'cross-entropy' as LossKind };

/** Projected sign-gradient iterations from `start`; returns the last iterate (not yet on the grid). */
export async function iterate(
  oracle: GradientOracle,
  input: AttackInput,
  start: Float32Array,
  eps: number,
  opts: { iterations: number; step: number; loss: LossKind; targeted: boolean; firstStep?: number },
): Promise<Float32Array> {
  const adv = start;
  const step = opts.step * ascentSign(opts.loss, opts.targeted);
  for (let t = 0; t < opts.iterations; t++) {
    const { grad } = await oracle.gradient({ x: adv, labels: input.labels, loss: opts.loss, ids: input.ids, step: (opts.firstStep ?? 0) + t });
    signStep(adv, grad, step);
    projectLinf(adv, input.x, eps);
  }
  return adv;
}

export function bim(params: BimParams = {}): Attack {
  const iterations = params.iterations ?? BIM_DEFAULTS.iterations;
  const fraction = params.stepFraction ?? BIM_DEFAULTS.stepFraction;
  const loss = params.loss ?? BIM_DEFAULTS.loss;
  if (!(Number.isInteger(iterations) && iterations >= 1)) throw new Error(`bim: iterations must be a positive integer, got ${iterations}`);
  if (!(fraction > 0)) throw new Error(`bim: step fraction must be > 0, got ${fraction}`);
  return {
    name: 'bim',
    passes: iterations,
    async run(oracle: GradientOracle, input: AttackInput, ctx: AttackContext) {
      checkInput(oracle, input);
      const adv = await iterate(oracle, input, Float32Array.from(input.x), ctx.eps, { iterations, step: fraction * ctx.eps, loss, targeted: ctx.targeted });
      return quantize(adv, input.x, ctx.eps);
    },
  };
}
