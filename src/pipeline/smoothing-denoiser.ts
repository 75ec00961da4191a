import { join } from 'node:path';
import { readManifest } from '../models/loader';
import { Manifest, SmoothingSpec } from '../models/manifest';
import { Graph } from '../onnx/graph';
import { loadModel, saveModel } from '../onnx/io';
import { UserError } from '../util/errors';
import { assertEncoderFrozen } from './frozen';
import { writeManifest } from './model-set';
import { recipeByName } from './recipes/catalogue';
import { recipeRecord } from './recipes/recipe';
import { S2SNetResult, S2SNetStage, trainS2SNet, trainedRecord } from './train-s2snet';

/**
 * A model set's smoothing denoiser d (docs/certification.md): the set's
 * stage-1 autoencoder with its decoder trained on noisy images through the
 * frozen classifier at σ — Salman et al.'s stability objective
 * KL(f(x) ‖ f(d(clip(x + δ)))), or cross-entropy against the labels
 * (`noise-ce`), δ ~ N(0, σ²I) — encoder and classifier frozen, as in the
 * paper's stage 2 (optionally after MSE denoising at σ, Salman et al.'s
 * order; or, as a named variant, with the encoder trained too). It is written into the set
 * beside the S2SNet (which it does not replace: classify still serves f ∘ s),
 * and the manifest's `smoothing` makes /v1/certify smooth f ∘ d instead of
 * f ∘ s, which was never trained for noise of that size.
 */

export const SMOOTHING_FILE = 'smoothing.onnx';
export const SMOOTHING_KEY = 'smoothing';
/** Stage-2 recipes that train on Gaussian-noised inputs through f, and so can make a smoothing denoiser. */
export const SMOOTHING_RECIPES = ['stability', 'noise-ce', 'noise-kl'] as const;
export type SmoothingRecipeName = (typeof SMOOTHING_RECIPES)[number];

/** A smoothing recipe at σ (its catalogue name when σ is the catalogue's). */
export function smoothingRecipe(sigma: number, name: SmoothingRecipeName = 'stability') {
  if (!(sigma > 0 && sigma <= 1)) throw new UserError(`smoothing σ must be in (0, 1], got ${sigma}`);
  if (!SMOOTHING_RECIPES.includes(name)) throw new UserError(`'${name}' is not a smoothing recipe (use one of ${SMOOTHING_RECIPES.join(', ')})`);
  const base = recipeByName(name);
  return base.noise?.kind === 'gaussian' && base.noise.sigma === sigma ? base : recipeByName(name, { sigma, noiseKind: 'gaussian' });
}

/** The MSE denoising objective at σ: Salman et al.'s first phase, before the classifier-guided one. */
export function pretrainRecipe(sigma: number) {
  return recipeByName('denoise', { sigma, noiseKind: 'gaussian' });
}

/** How a smoothing denoiser is trained, besides the optimiser's settings. */
export interface SmoothingPlan {
  sigma: number;
  /** the classifier-guided objective (default: stability) */
  recipe?: SmoothingRecipeName;
  /**
   * Epochs of MSE denoising at σ first (no classifier, no labels), then the
   * recipe from there: the order of Salman et al. 2020, §4 ("MSE+Stab").
   * Same batch, learning rate, seed and step budget as the second phase.
   */
  pretrainEpochs?: number;
  /** the named variant that trains the encoder too (f stays frozen) */
  trainEncoder?: boolean;
}

export type SmoothingStage = Omit<S2SNetStage, 'loss' | 'recipe' | 'trainEncoder'> & SmoothingPlan;

/** The denoiser; seconds and cpuSeconds cover both phases, `pretraining` the first alone. */
export type SmoothingResult = S2SNetResult & { pretraining?: { steps: number; seconds: number; cpuSeconds: number } };

export async function trainSmoothingDenoiser(r: SmoothingStage): Promise<SmoothingResult> {
  const { sigma, recipe: name, pretrainEpochs, ...stage } = r;
  const recipe = smoothingRecipe(sigma, name);
  let autoencoder = stage.autoencoder;
  let pretraining: SmoothingResult['pretraining'];
  if (pretrainEpochs) {
    if (!(Number.isInteger(pretrainEpochs) && pretrainEpochs > 0)) throw new UserError(`pretraining epochs must be a positive integer, got ${pretrainEpochs}`);
    const pre = await trainS2SNet({
      ...stage,
      label: `${stage.label}, phase 1: MSE denoising`,
      loss: 'kl',
      recipe: pretrainRecipe(sigma),
      // A step budget (--steps, smoke runs) bounds each phase; otherwise the phase runs its epochs.
      settings: { ...stage.settings, epochs: pretrainEpochs },
      checkpointDir: stage.checkpointDir && join(stage.checkpointDir, 'pretrain'),
    });
    autoencoder = pre.s2snet;
    pretraining = { steps: pre.train.steps, seconds: pre.seconds, cpuSeconds: pre.cpuSeconds };
  }
  // Each phase checks its encoder against the graph it started from, so a frozen encoder is the set's through both.
  const r2 = await trainS2SNet({ ...stage, autoencoder, loss: recipe.loss === 'ce' ? 'ce' : 'kl', recipe });
  if (!pretraining) return r2;
  return { ...r2, seconds: r2.seconds + pretraining.seconds, cpuSeconds: r2.cpuSeconds + pretraining.cpuSeconds, pretraining };
}

/** What the manifest records of how d was trained (settings only, so a rerun writes the same manifest). */
export function smoothingTrainingRecord(plan: SmoothingPlan, settings: { steps?: number }): Record<string, unknown> {
  const pretraining = plan.pretrainEpochs ? { ...recipeRecord(pretrainRecipe(plan.sigma)), epochs: plan.pretrainEpochs, ...(settings.steps ? { steps: settings.steps } : {}) } : undefined;
  return {
    ...recipeRecord(smoothingRecipe(plan.sigma, plan.recipe)),
    ...(pretraining ? { pretraining } : {}),
    trained: trainedRecord(plan.trainEncoder),
    optimizer: 'adamw',
    schedule: 'cosine, 5% linear warm-up',
    ...settings,
  };
}

/**
 * Writes d into the set folder as smoothing.onnx and adds `files.smoothing`
 * and `smoothing` to its manifest (every sha256 recomputed from disk). The
 * encoder must be the set autoencoder's, bit for bit, unless the denoiser is
 * the named variant that trained it (`encoderTrained`, which its training
 * record then says).
 */
export function attachSmoothing(dir: string, denoiser: Graph, o: { sigma: number; clip?: boolean; training?: Record<string, unknown>; version?: string; encoderTrained?: boolean }): Manifest {
  const m = readManifest(dir);
  if (m.files.autoencoder && !o.encoderTrained) assertEncoderFrozen(loadModel(join(dir, m.files.autoencoder.path)), denoiser);
  if (!denoiser.inputs.some((v) => v.name === 'input') || !denoiser.outputs.some((v) => v.name === 'reconstruction')) {
    throw new UserError(`a smoothing denoiser takes 'input' and gives 'reconstruction' (has ${denoiser.inputs.map((v) => v.name).join(', ')} → ${denoiser.outputs.map((v) => v.name).join(', ')})`);
  }
  saveModel(denoiser, join(dir, SMOOTHING_FILE));
  const files: Record<string, string> = {};
  for (const [key, ref] of Object.entries(m.files)) if (ref) files[key] = ref.path;
  files[SMOOTHING_KEY] = SMOOTHING_FILE;
  const smoothing: SmoothingSpec = { sigma: o.sigma, denoiser: SMOOTHING_KEY, clip: o.clip ?? true, ...(o.training ? { training: o.training } : {}) };
  return writeManifest(dir, { ...m, version: o.version ?? m.version, files, smoothing });
}
