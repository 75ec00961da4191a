import { Attack, AttackContext, AttackInput, checkInput } from './attack';
import { LossKind, ascentSign } from './objective';
import { GradientOracle } from './oracle';
import { quantize, signStep } from './pixels';

/** FGSM (Goodfellow et al. 2015): one step x' = x ± ε·sign(∇x L). */
export interface FgsmParams {
  loss?: LossKind;
}

export function fgsm(params: FgsmParams = {}): Attack {
  const loss = params.loss ?? 'cross-entropy';
  return {
    name: 'fgsm',
    passes: 1,
    async run(oracle: GradientOracle, input: AttackInput, ctx: AttackContext) {
      checkInput(oracle, input);
      const { grad } = await oracle.gradient({ x: input.x, labels: input.labels, loss, ids: input.ids, step: 0 });
      const adv = Float32Array.from(input.x);
      signStep(adv, grad, ctx.eps * ascentSign(loss, ctx.targeted));
      return quantize(adv, input.x, ctx.eps);
    },
  };
}
