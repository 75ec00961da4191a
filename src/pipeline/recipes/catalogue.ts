import { UserError } from '../../util/errors';
import { DefendedGradient, Stage2Recipe, checkRecipe } from './recipe';

/**
 * The named stage-2 recipes (`s2s train s2snet --recipe NAME`). σ and ε are
 * in pixel units of [0, 1] images.
 */
export const RECIPES: readonly Stage2Recipe[] = [
  { name: 'paper-ce', loss: 'ce', description: "the paper's stage 2: CE(f(s(x)), y) on clean images (the default set's S2SNet up to 1.2.0, the ResNet set's)" },
  { name: 'paper-kl', loss: 'kl', description: 'label-free: KL(f(x) ‖ f(s(x))) on clean images' },
  { name: 'noise-ce', loss: 'ce', noise: { kind: 'gaussian', sigma: 0.1 }, description: 'CE(f(s(clip(x + n))), y), n ~ N(0, 0.1²) drawn per image and step' },
  { name: 'noise-kl', loss: 'kl', noise: { kind: 'gaussian', sigma: 0.1 }, description: 'KL(f(x) ‖ f(s(clip(x + n)))), n ~ N(0, 0.1²): reference on the clean image' },
  {
    name: 'stability',
    loss: 'kl',
    noise: { kind: 'gaussian', sigma: 0.25 },
    description:
      "Salman et al. 2020's stability objective for denoised smoothing: f's output on the clean image as the target for f(s(x + δ)), δ ~ N(0, σ²), σ = 0.25 (soft targets: KL, which has CE's gradient)",
  },
  { name: 'denoise', loss: 'mse', noise: { kind: 'gaussian', sigma: 0.1 }, description: 'denoising autoencoder baseline: ‖s(clip(x + n)) − x‖², n ~ N(0, 0.1²); no classifier, no labels' },
  {
    name: 'adversarial-f',
    loss: 'ce',
    adversarial: { against: 'f', attack: 'fgsm', epsMax: 0.1, iterations: 1, fraction: 0.5 },
    description: 'classifier-guided denoiser (HGD-like): half of each batch FGSM examples of f with ε ~ U(0, 0.1) made afresh every step, CE(f(s(x′)), y) on them and on the clean half',
  },
  {
    name: 'adversarial-fs',
    loss: 'ce',
    adversarial: { against: 'defended', gradient: 'alternate', attack: 'pgd', epsMin: 0, epsMax: 0.1, iterations: 5, fraction: 0.5 },
    description:
      'adversarial training of the decoder (Madry et al. 2018 with encoder and f frozen): half of each batch PGD-5 examples of the current f ∘ s with ε ~ U(0, 0.1), made afresh every step with its true gradient and with BPDA on alternate batches; CE(f(s(x′)), y) on them and on the clean half',
  },
  {
    name: 'adversarial-trades',
    loss: 'trades',
    beta: 6,
    adversarial: { against: 'defended', gradient: 'alternate', attack: 'pgd', epsMin: 0, epsMax: 0.1, iterations: 5, fraction: 1 },
    description:
      'TRADES (Zhang et al. 2019) for the decoder, encoder and f frozen: every image beside a PGD-5 example of the current f ∘ s with ε ~ U(0, 0.1) (true gradient and BPDA on alternate batches, CE ascent), loss CE(f(s(x)), y) + β·KL(f(s(x)) ‖ f(s(x′))), β = 6',
  },
];

export const RECIPE_NAMES = RECIPES.map((r) => r.name);

/** `--adv-*` overrides of a recipe's adversarial inputs (a recipe without them gets them against f ∘ s). */
export interface AdversarialOverrides {
  epsMin?: number;
  epsMax?: number;
  iterations?: number;
  attack?: 'fgsm' | 'pgd';
  fraction?: number;
  against?: 'f' | 'defended';
  gradient?: DefendedGradient;
  ascent?: 'ce' | 'kl';
}

/** A named recipe, with `--noise-sigma` and `--adv-*` style overrides applied. */
export function recipeByName(name: string, overrides: { sigma?: number; noiseKind?: 'gaussian' | 'uniform' | 'sign'; adversarial?: AdversarialOverrides; beta?: number } = {}): Stage2Recipe {
  const base = RECIPES.find((r) => r.name === name);
  if (!base) throw new UserError(`unknown stage-2 recipe '${name}' (known: ${RECIPE_NAMES.join(', ')})`);
  const r: Stage2Recipe = { ...base, noise: base.noise ? { ...base.noise } : undefined, adversarial: base.adversarial ? { ...base.adversarial } : undefined };
  if (overrides.sigma !== undefined || overrides.noiseKind !== undefined) {
    r.noise = { kind: overrides.noiseKind ?? r.noise?.kind ?? 'gaussian', sigma: overrides.sigma ?? r.noise?.sigma ?? 0.1 };
    r.name = `${r.name}(${r.noise.kind}:${r.noise.sigma})`;
    // The catalogue's description names its own noise; say what this one draws instead.
    r.description = `${base.description} — overridden: input noise ${r.noise.kind} of scale ${r.noise.sigma}`;
  }
  const o = overrides.adversarial;
  if (o && Object.values(o).some((v) => v !== undefined)) {
    const a = { ...(r.adversarial ?? { against: 'defended', attack: 'pgd', epsMin: 0, epsMax: 0.1, iterations: 5, fraction: 0.5 }) };
    for (const [k, v] of Object.entries(o)) if (v !== undefined) (a as Record<string, unknown>)[k] = v;
    if (a.attack === 'fgsm') a.iterations = 1;
    r.adversarial = a;
    const eps = a.epsMin === a.epsMax ? `${a.epsMax}` : `${a.epsMin ?? 0}-${a.epsMax}`;
    const how = a.gradient && a.gradient !== 'through-s' ? `/${a.gradient}` : '';
    const ascent = a.ascent === 'kl' ? '-kl' : '';
    r.name = `${r.name}(${a.attack}${a.attack === 'pgd' ? `-${a.iterations}` : ''}${ascent}:${eps} vs ${a.against}${how}, ${a.fraction})`;
    const against = a.against === 'f' ? 'f' : `the current f ∘ s${how ? ` (gradient: ${a.gradient})` : ''}`;
    r.description = `${r.description} — overridden: adversarial inputs ${a.attack}${a.attack === 'pgd' ? ` ${a.iterations} iterations` : ''}, ε ~ U(${a.epsMin ?? 0}, ${a.epsMax}), against ${against}, fraction ${a.fraction} of each batch${a.ascent === 'kl' ? ', ascending KL(f(s(x)) ‖ f(s(x′))) instead of the label’s CE' : ''}`;
  }
  if (overrides.beta !== undefined) {
    if (r.loss !== 'trades') throw new UserError(`--trades-beta is for a trades recipe; '${base.name}' trains with ${r.loss}`);
    r.beta = overrides.beta;
    r.name = `${r.name}(β ${r.beta})`;
    r.description = `${r.description} — overridden: β = ${r.beta}`;
  }
  return checkRecipe(r);
}
