import { Attack, withDefaults } from '../attacks/attack';
import { CW_DEFAULTS } from '../attacks/cw';
import { APGD_DEFAULTS } from '../attacks/apgd';
import { BIM_DEFAULTS } from '../attacks/bim';
import { PGD_DEFAULTS } from '../attacks/pgd';
import { AttackParams, createAttack, isAttackName, ATTACK_NAMES } from '../attacks/registry';
import { UserError } from '../util/errors';

/**
 * The attacks of a run as the CLI names them: `fgsm`, `bim`, `pgd`, `cw`, and
 * the adaptive `<name>+eot`, which reads gradients averaged over draws of
 * the noise layer under test (eot.ts) and is therefore run once per noise
 * configuration (it equals the plain attack where there is no noise).
 */
export interface AttackPlan {
  id: string;
  attack: Attack;
  eot: boolean;
}

export function parseAttacks(list: string, params: AttackParams): AttackPlan[] {
  const ids = [...new Set(list.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))];
  if (ids.length === 0) throw new UserError('no attacks given');
  return ids.map((id) => {
    const [base, suffix, extra] = id.split('+');
    if (extra !== undefined || (suffix !== undefined && suffix !== 'eot') || !isAttackName(base)) {
      throw new UserError(`unknown attack '${id}' (known: ${ATTACK_NAMES.join(', ')}, each optionally with +eot)`);
    }
    return { id, attack: createAttack(base, params), eot: suffix === 'eot' };
  });
}

/** Every parameter of every attack, defaults filled in, as results.json records them. */
export function resolvedParams(plans: readonly AttackPlan[], params: AttackParams): Record<string, Record<string, number | string>> {
  const out: Record<string, Record<string, number | string>> = {};
  for (const p of plans) {
    const base = p.id.split('+')[0];
    if (out[base]) continue;
    if (base === 'fgsm') out.fgsm = { loss: params.fgsm?.loss ?? 'cross-entropy' };
    if (base === 'bim') {
      const b = withDefaults(BIM_DEFAULTS, params.bim);
      out.bim = { iterations: b.iterations, stepFraction: b.stepFraction, loss: b.loss };
    }
    if (base === 'pgd') {
      const g = withDefaults(PGD_DEFAULTS, params.pgd);
      out.pgd = { iterations: g.iterations, stepFraction: params.pgd?.stepFraction ?? 2.5 / g.iterations, restarts: g.restarts, loss: g.loss };
    }
    if (base === 'apgd') {
      const a = withDefaults(APGD_DEFAULTS, params.apgd);
      out.apgd = { iterations: a.iterations, restarts: a.restarts, loss: a.loss, rho: a.rho, alpha: a.alpha };
    }
    if (base === 'cw') {
      const c = withDefaults(CW_DEFAULTS, params.cw);
      out.cw = { iterations: c.iterations, learningRate: c.learningRate, kappa: c.kappa, searchSteps: c.searchSteps, initialConst: c.initialConst, box: 'eps' };
    }
  }
  return out;
}
