import { DataType } from '../onnx/dtype';
import { Graph, cloneGraph } from '../onnx/graph';
import { parameterCandidates, runningStatistics } from '../training/params';
import { UserError } from '../util/errors';
import { Normalisation, canonicalClassifier, composeDefended, imageGeometry, imageInput, reconstructionOutput } from './compose';
import { DECODER_PREFIX, ENCODER_PREFIX, assertEncoderFrozen } from './frozen';
import { StageResult, StageRun, runStage } from './run-stage';
import { Trainer } from '../training/trainer';
import { adversarialDataset } from './recipes/adversarial-data';
import { currentDefendedSource, frozenClassifierSource } from './recipes/adversarial-source';
import { withInputNoise } from './recipes/noise-graph';
import { ADVERSARIAL_LOGITS, pairedDataset, pairedModel } from './recipes/pairs';
import { ENCODER_VARIANT_RECORD, STAGE2_RECIPE_METADATA, Stage2Recipe, checkRecipe, recipeRecord } from './recipes/recipe';

/**
 * Stage 2 of S2SNet (docs/protocol.md, "Training"): f ∘ s with the encoder and the
 * classifier frozen, only the decoder fine-tuned so that f classifies the
 * reconstruction correctly.
 *
 * - loss 'ce': cross-entropy of f(d(e(x))) against the labels (the paper).
 * - loss 'kl': KL(softmax f(x) ‖ softmax f(s(x))) against the frozen
 *   classifier on the clean input — label-free, and the very score the
 *   detector thresholds.
 *
 * Only `decoder.` parameters are handed to the gradient engine, so neither
 * the encoder's nor the classifier's weight gradients are ever computed (the
 * backward pass through f is for its input only). The decoder's BatchNorm
 * layers train in training form; the encoder's and f's stay in inference
 * form with their stored statistics.
 *
 * A recipe (recipes/) adds to the loss what the decoder is trained on: noisy
 * inputs, adversarial inputs, or a plain denoising objective without f.
 */
export type S2SLoss = 'ce' | 'kl';

export type S2SNetStage = Omit<StageRun, 'artifacts' | 'model'> & {
  autoencoder: Graph;
  classifier: Graph;
  /** the classifier's (x − mean)/std; composed in front of it */
  normalisation?: Normalisation;
  /** the paper's recipes by loss; `recipe`, when given, takes precedence */
  loss: S2SLoss;
  recipe?: Stage2Recipe;
  /**
   * A named variant outside the paper's structure: the encoder trains with the
   * decoder (its BatchNorm in training form too); f stays frozen. For a
   * denoiser whose input noise the clean-trained encoder was never fitted to.
   */
  trainEncoder?: boolean;
};

export interface S2SNetResult extends StageResult {
  /** the S2SNet: the autoencoder's graph with the fine-tuned decoder */
  s2snet: Graph;
  trainedParameters: string[];
  recipe: Stage2Recipe;
}

/** What stage 2 trained, for the records (model metadata, manifest). */
export function trainedRecord(trainEncoder = false): string {
  return trainEncoder ? ENCODER_VARIANT_RECORD : 'decoder.* only; encoder and classifier frozen';
}

/** Trainable encoder parameters of an autoencoder graph (the variant that trains the encoder too). */
export function encoderParameters(ae: Graph): string[] {
  return parameterCandidates(ae).filter((n) => n.startsWith(ENCODER_PREFIX));
}

/** Trainable decoder parameters of an autoencoder graph; an AE without them cannot be fine-tuned. */
export function decoderParameters(ae: Graph): string[] {
  const params = parameterCandidates(ae).filter((n) => n.startsWith(DECODER_PREFIX));
  if (params.length === 0) throw new UserError(`autoencoder '${ae.name}' has no '${DECODER_PREFIX}' parameters to fine-tune (stage 2 trains the decoder only)`);
  if (!parameterCandidates(ae).some((n) => n.startsWith(ENCODER_PREFIX))) throw new UserError(`autoencoder '${ae.name}' has no '${ENCODER_PREFIX}' parameters; cannot tell encoder from decoder`);
  return params;
}

export async function trainS2SNet(r: S2SNetStage): Promise<S2SNetResult> {
  const ae = r.autoencoder;
  const aeGeo = imageGeometry(ae, 'autoencoder');
  const fGeo = imageGeometry(r.classifier, 'classifier');
  if (aeGeo.join() !== fGeo.join()) throw new UserError(`the autoencoder takes [${aeGeo}] images, the classifier [${fGeo}]`);
  if (imageInput(ae, 'autoencoder') !== 'input') throw new UserError(`autoencoder '${ae.name}': its input must be named 'input'`);
  reconstructionOutput(ae);
  const decoder = decoderParameters(ae);
  const trained = r.trainEncoder ? [...encoderParameters(ae), ...decoder] : decoder;
  const f = canonicalClassifier(r.classifier, r.normalisation);
  const recipe = checkRecipe(r.recipe ?? { name: `paper-${r.loss}`, loss: r.loss, description: `the paper's stage 2 (${r.loss})` });
  const front = recipe.noise ? withInputNoise(ae, recipe.noise, r.settings.seed) : ae;
  const paired = recipe.loss === 'trades';
  const defended = composeDefended(front, f, 's2snet_training');
  const model = recipe.loss === 'mse' ? front : paired ? pairedModel(defended, aeGeo[0], classCount(f)) : defended;
  // Examples against the current f ∘ s read the trainer's values at each batch.
  let trainer: Trainer | undefined;
  const current = () => {
    if (!trainer) throw new Error('stage 2: adversarial examples of f ∘ s were asked for before training started');
    return trainer.values();
  };
  const threads = r.intraOpThreads || 1;
  const source = recipe.adversarial && (recipe.adversarial.against === 'f' ? frozenClassifierSource(f, threads) : currentDefendedSource(ae, f, current, threads, recipe.adversarial.gradient));
  const examples = recipe.adversarial && source ? adversarialDataset(r.train, source, recipe.adversarial, r.settings.seed) : undefined;
  // trades: each row is [x′; x] (pairs.ts), held-out rows (x, x)
  const adversarial = paired ? pairedDataset(r.train, examples) : examples;
  const train = adversarial ?? r.train;
  const evalData = paired && r.eval ? pairedDataset(r.eval) : r.eval;
  const loss =
    recipe.loss === 'ce'
      ? ({ kind: 'cross-entropy', output: 'logits' } as const)
      : recipe.loss === 'trades'
        ? ({ kind: 'trades', output: 'logits', adversarial: ADVERSARIAL_LOGITS, beta: recipe.beta } as const)
        : recipe.loss === 'kl'
          ? ({ kind: 'kl', output: 'logits', reference: { classifier: f, output: 'logits' } } as const)
          : ({ kind: 'mse', output: reconstructionOutput(ae), target: 'input' } as const);

  let result: StageResult;
  try {
    result = await runStage({
      ...r,
      train,
      eval: evalData,
      dataTag: `${r.dataTag}|recipe=${JSON.stringify(recipe)}`,
      model,
      artifacts: { requiresGrad: trained, input: 'input', loss },
      onTrainer: (t) => {
        trainer = t;
      },
    });
  } finally {
    await adversarial?.release();
  }

  // The S2SNet is the autoencoder graph itself with the decoder's trained values written in:
  // nothing else is touched, so the encoder stays the autoencoder's bytes by construction
  // (unless the --train-encoder variant trained it too).
  const s2snet = cloneGraph(ae);
  s2snet.name = 's2snet';
  s2snet.metadata = { ...(ae.metadata ?? {}), [STAGE2_RECIPE_METADATA]: JSON.stringify({ ...recipeRecord(recipe), ...r.settings, trained: trainedRecord(r.trainEncoder) }) };
  const stats = runningStatistics(ae);
  for (const [name, t] of result.values) {
    if (!name.startsWith(DECODER_PREFIX) && !(r.trainEncoder && name.startsWith(ENCODER_PREFIX))) throw new Error(`stage 2 trained '${name}', which is not a ${r.trainEncoder ? 'decoder or encoder' : 'decoder'} tensor`);
    const old = ae.initializers.get(name);
    if (!old || old.dataType !== DataType.FLOAT || old.dims.join() !== t.dims.join()) throw new Error(`stage 2 produced '${name}' [${t.dims}], which does not fit the autoencoder`);
    if (!trained.includes(name) && !stats.has(name)) throw new Error(`stage 2 produced '${name}', neither a trained parameter nor a running statistic`);
    s2snet.initializers.set(name, t);
  }
  if (!r.trainEncoder) assertEncoderFrozen(ae, s2snet);
  return { ...result, s2snet, trainedParameters: trained, recipe };
}

/** K of the canonical classifier's logits [N, K] (the trades pairs split them back by it). */
function classCount(f: Graph): number {
  const k = f.outputs.find((o) => o.name === 'logits')?.shape?.[1];
  if (typeof k !== 'number' || !(k > 0)) throw new UserError(`classifier '${f.name}': the class count of its logits is not fixed (shape [${f.outputs.find((o) => o.name === 'logits')?.shape ?? '?'}])`);
  return k;
}
