import { UserError } from '../util/errors';
import { Attack } from './attack';
import { ApgdParams, apgd } from './apgd';
import { BimParams, bim } from './bim';
import { CwParams, cw } from './cw';
import { FgsmParams, fgsm } from './fgsm';
import { PgdParams, pgd } from './pgd';

/** The attacks by name, as the CLI and results.json spell them. */
export type AttackName = 'fgsm' | 'bim' | 'pgd' | 'cw' | 'apgd';

export const ATTACK_NAMES: readonly AttackName[] = ['fgsm', 'bim', 'pgd', 'cw', 'apgd'];

export interface AttackParams {
  fgsm?: FgsmParams;
  bim?: BimParams;
  pgd?: PgdParams;
  cw?: CwParams;
  apgd?: ApgdParams;
}

export function isAttackName(s: string): s is AttackName {
  return (ATTACK_NAMES as readonly string[]).includes(s);
}

export function createAttack(name: string, params: AttackParams = {}): Attack {
  switch (name) {
    case 'fgsm':
      return fgsm(params.fgsm);
    case 'bim':
      return bim(params.bim);
    case 'pgd':
      return pgd(params.pgd);
    case 'cw':
      return cw(params.cw);
    case 'apgd':
      return apgd(params.apgd);
    default:
      throw new UserError(`unknown attack '${name}' (known: ${ATTACK_NAMES.join(', ')})`);
  }
}
