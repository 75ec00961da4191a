import { NoiseSpec } from '../../attacks/noise';
import { Graph } from '../../onnx/graph';
import { UserError } from '../../util/errors';

/**
 * A stage-2 recipe: how the decoder of the S2SNet is fine-tuned. The
 * encoder and the classifier stay frozen in every recipe (the paper's
 * structure), so every recipe's S2SNet carries the stage-1 encoder byte for
 * byte. What varies:
 *
 * - `loss`: 'ce' — CE(f(s(x')), y), the paper; 'kl' — KL(f(x) ‖ f(s(x'))),
 *   label-free, against the classifier on the *clean* image; 'mse' —
 *   ‖s(x') − x‖², no classifier at all (a denoising autoencoder); 'trades' —
 *   CE(f(s(x)), y) + β·KL(f(s(x)) ‖ f(s(x'))), every image beside its
 *   adversarial partner (Zhang et al. 2019; pairs.ts);
 * - `noise`: x' = clip(x + n) with n drawn afresh for every image of every
 *   step (inside the training graph: noise-graph.ts);
 * - `adversarial`: x' is, for a fraction of each batch, an FGSM/PGD example
 *   with ε drawn uniformly per image (adversarial-data.ts) — of the frozen
 *   classifier f, or of the current f ∘ s (the decoder as trained so far:
 *   adversarial training of the decoder) — the other images clean; their CE
 *   term is what keeps clean accuracy.
 */
export type RecipeLoss = 'ce' | 'kl' | 'mse' | 'trades';

/** How examples of the current f ∘ s take their gradient (adversarial-source.ts says what each means). */
export const DEFENDED_GRADIENTS = ['through-s', 'bpda', 'alternate', 'rotate-with-f'] as const;
export type DefendedGradient = (typeof DEFENDED_GRADIENTS)[number];

export interface AdversarialInputs {
  /**
   * The model whose gradients make the examples: 'f', the frozen classifier
   * (a guided denoiser); 'defended', the current f ∘ s — the decoder's values
   * of the step being trained, with its BatchNorm in inference form, as served.
   */
  against: 'f' | 'defended';
  /** against 'defended': the true gradient of f ∘ s, BPDA, one then the other per batch, or those two and f's own in rotation (adversarial-source.ts); default 'through-s' */
  gradient?: DefendedGradient;
  attack: 'fgsm' | 'pgd';
  /** per image ε ~ U(epsMin, epsMax); epsMin defaults to 0 */
  epsMin?: number;
  epsMax: number;
  /** PGD iterations (fgsm: 1) */
  iterations: number;
  /** what the examples ascend: 'ce', the cross-entropy of the label (default); 'kl', KL from the clean image's prediction (TRADES' inner maximisation; adversarial-data.ts) */
  ascent?: 'ce' | 'kl';
  /** fraction of each batch replaced by adversarial examples */
  fraction: number;
}

export interface Stage2Recipe {
  name: string;
  description: string;
  loss: RecipeLoss;
  noise?: NoiseSpec;
  adversarial?: AdversarialInputs;
  /** trades: the weight β of the KL term */
  beta?: number;
}

export function checkRecipe(r: Stage2Recipe): Stage2Recipe {
  if (!['ce', 'kl', 'mse', 'trades'].includes(r.loss)) throw new UserError(`recipe '${r.name}': loss must be ce, kl, mse or trades, got '${r.loss}'`);
  if (r.loss === 'trades') {
    if (!r.adversarial) throw new UserError(`recipe '${r.name}': the trades loss needs adversarial inputs`);
    if (r.adversarial.fraction !== 1) throw new UserError(`recipe '${r.name}': the trades loss gives every image an adversarial partner; its adversarial fraction must be 1, got ${r.adversarial.fraction}`);
    if (r.noise) throw new UserError(`recipe '${r.name}': the trades loss takes no input noise`);
    if (!(r.beta !== undefined && r.beta > 0 && Number.isFinite(r.beta))) throw new UserError(`recipe '${r.name}': the trades loss needs β > 0, got ${r.beta}`);
  } else if (r.beta !== undefined) throw new UserError(`recipe '${r.name}': β is the trades loss's; this recipe's loss is ${r.loss}`);
  if (r.noise && !(r.noise.sigma > 0 && r.noise.sigma <= 1)) throw new UserError(`recipe '${r.name}': noise σ must be in (0, 1], got ${r.noise.sigma}`);
  const a = r.adversarial;
  if (a) {
    if (r.loss === 'mse') throw new UserError(`recipe '${r.name}': adversarial inputs need a classifier loss (ce or kl), not mse`);
    if (a.against !== 'f' && a.against !== 'defended') throw new UserError(`recipe '${r.name}': adversarial examples are made against 'f' or 'defended', got '${String(a.against)}'`);
    if (a.gradient !== undefined && !DEFENDED_GRADIENTS.includes(a.gradient)) throw new UserError(`recipe '${r.name}': adversarial gradient must be one of ${DEFENDED_GRADIENTS.join(', ')}, got '${String(a.gradient)}'`);
    if (a.gradient !== undefined && a.gradient !== 'through-s' && a.against !== 'defended') throw new UserError(`recipe '${r.name}': a ${a.gradient} gradient needs examples against the current f ∘ s (against 'defended')`);
    if (a.attack !== 'fgsm' && a.attack !== 'pgd') throw new UserError(`recipe '${r.name}': adversarial attack must be fgsm or pgd, got '${String(a.attack)}'`);
    if (!(a.epsMax > 0 && a.epsMax <= 1)) throw new UserError(`recipe '${r.name}': adversarial epsMax must be in (0, 1], got ${a.epsMax}`);
    if (a.epsMin !== undefined && !(a.epsMin >= 0 && a.epsMin <= a.epsMax)) throw new UserError(`recipe '${r.name}': adversarial epsMin must be in [0, epsMax], got ${a.epsMin}`);
    if (!(a.fraction > 0 && a.fraction <= 1)) throw new UserError(`recipe '${r.name}': adversarial fraction must be in (0, 1], got ${a.fraction}`);
    if (!(Number.isInteger(a.iterations) && a.iterations >= 1)) throw new UserError(`recipe '${r.name}': adversarial iterations must be a positive integer`);
    if (a.ascent !== undefined && a.ascent !== 'ce' && a.ascent !== 'kl') throw new UserError(`recipe '${r.name}': adversarial ascent must be ce or kl, got '${String(a.ascent)}'`);
    // At x′ = x the KL's gradient is zero: FGSM from the clean image would not move.
    if (a.ascent === 'kl' && a.attack !== 'pgd') throw new UserError(`recipe '${r.name}': KL ascent needs PGD (it starts from a random point; at the clean image its gradient is zero)`);
  }
  return r;
}

/** Key of the S2SNet's ONNX metadata that carries its recipe and stage settings (JSON), so `s2s train set` can put them in the manifest. */
export const STAGE2_RECIPE_METADATA = 's2s.stage2.recipe';

/** What the manifest records about a recipe. */
export function recipeRecord(r: Stage2Recipe): Record<string, unknown> {
  return { recipe: r.name, description: r.description, loss: r.loss, ...(r.noise ? { noise: `${r.noise.kind}:${r.noise.sigma}` } : {}), ...(r.adversarial ? { adversarial: { ...r.adversarial } } : {}), ...(r.beta !== undefined ? { beta: r.beta } : {}) };
}

/** What stage 2 records as trained for the --train-encoder variant (model metadata, manifest). */
export const ENCODER_VARIANT_RECORD = 'encoder.* and decoder.* (variant: encoder not frozen); classifier frozen';

/** Whether an S2SNet's recorded stage 2 is the named variant that trained the encoder too (its encoder then differs from stage 1's by design). */
export function encoderTrainedVariant(s2snet: Graph): boolean {
  const raw = s2snet.metadata?.[STAGE2_RECIPE_METADATA];
  if (!raw) return false;
  try {
    const trained = (JSON.parse(raw) as { trained?: unknown }).trained;
    return trained === ENCODER_VARIANT_RECORD;
  } catch {
    return false;
  }
}
