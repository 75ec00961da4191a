import { UserError } from '../util/errors';

/**
 * The paper's attack settings (docs/protocol.md, "Attack settings"). A setting is a pair of models: the one the
 * attacker differentiates and the one the adversarial image is judged by.
 *
 *   f    the classifier (with the manifest's normalisation in front)
 *   fs   f ∘ s, the defended model
 *   fae  f ∘ AE, the plain-autoencoder (MagNet-like) baseline
 *
 * Noise layers (section 4.1.1) sit in front of the judged model: it sees
 * clip(x' + n). For the two settings judged by f alone that makes noise the
 * only defence, which is the baseline a noise study needs.
 */
export type ModelKey = 'f' | 'fs' | 'fae';

/** Where an attack's gradients come from: one model, or f and f ∘ s together (the detector-aware attack, attacks/joint.ts). */
export type Source = ModelKey | 'f+fs';

/** The models a gradient source differentiates. */
export function sourceModels(source: Source): ModelKey[] {
  return source === 'f+fs' ? ['f', 'fs'] : [source];
}

export type SettingName = 'undefended' | 'whitebox' | 'whitebox-prime' | 'graybox' | 'autoencoder' | 'detector-aware';

export interface Setting {
  name: SettingName;
  /** whose gradients the attack reads */
  source: Source;
  /** which model the adversarial image is evaluated on */
  target: ModelKey;
  description: string;
}

export const SETTINGS: readonly Setting[] = [
  { name: 'undefended', source: 'f', target: 'f', description: 'gradients of f, evaluated on f' },
  { name: 'whitebox', source: 'fs', target: 'fs', description: 'gradients of f ∘ s (through the S2SNet), evaluated on f ∘ s' },
  { name: 'whitebox-prime', source: 'f', target: 'fs', description: "gradients of f alone (reparametrisation, BPDA-like), evaluated on f ∘ s" },
  { name: 'graybox', source: 'fs', target: 'f', description: 'gradients of f ∘ s, evaluated on f (defence by removal)' },
  { name: 'autoencoder', source: 'fae', target: 'fae', description: 'gradients of f ∘ AE, evaluated on f ∘ AE (plain-AE baseline)' },
  // Not one of the paper's settings: the adaptive attack a detector invites (attacks/joint.ts).
  { name: 'detector-aware', source: 'f+fs', target: 'fs', description: 'gradients of L(f) + L(f ∘ s): fools f ∘ s and f together, so the KL detector sees agreement; evaluated on f ∘ s' },
];

export const SETTING_NAMES: readonly SettingName[] = SETTINGS.map((s) => s.name);

/** The paper's five settings: the default of `s2s eval`. */
export const PAPER_SETTINGS: readonly SettingName[] = ['undefended', 'whitebox', 'whitebox-prime', 'graybox', 'autoencoder'];

export const MODEL_DESCRIPTIONS: Record<ModelKey, string> = { f: 'f', fs: 'f ∘ s', fae: 'f ∘ AE' };

export function setting(name: string): Setting {
  const s = SETTINGS.find((x) => x.name === name);
  if (!s) throw new UserError(`unknown setting '${name}' (known: ${SETTING_NAMES.join(', ')})`);
  return s;
}

/** Parses `a,b,c`; order follows the table above so reports are laid out the same way every time. */
export function parseSettings(list: string): Setting[] {
  const names = new Set(list.split(',').map((s) => s.trim()).filter(Boolean));
  if (names.size === 0) throw new UserError('no settings given');
  for (const n of names) setting(n);
  return SETTINGS.filter((s) => names.has(s.name));
}

/** Models that must be loaded to run these settings. */
export function modelsNeeded(settings: readonly Setting[]): Set<ModelKey> {
  const m = new Set<ModelKey>();
  for (const s of settings) {
    for (const k of sourceModels(s.source)) m.add(k);
    m.add(s.target);
  }
  return m;
}
