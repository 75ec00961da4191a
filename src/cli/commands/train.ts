import { Command, Option } from 'commander';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { architectureNames, getArchitecture } from '../../architectures/architectures';
import { Graph } from '../../onnx/graph';
import { loadModel, saveModel } from '../../onnx/io';
import { parseProvider } from '../../runtime/providers';
import { UserError } from '../../util/errors';
import { assembleModelSet } from '../../pipeline/assemble';
import { Normalisation, canonicalClassifier, composeDefended, imageGeometry } from '../../pipeline/compose';
import { DataSource, Geometry, openData } from '../../pipeline/data';
import { DEFAULT_RECIPE, DEFAULT_SMOOTHING, PAPER_STAGE2, buildDefaultSets, stageIds } from '../../pipeline/default-set';
import { SMOOTHING_RECIPES, SmoothingPlan, SmoothingRecipeName, attachSmoothing, smoothingRecipe, smoothingTrainingRecord, trainSmoothingDenoiser } from '../../pipeline/smoothing-denoiser';
import { loadModelSet } from '../../models/loader';
import { StageResult, StageSettings } from '../../pipeline/run-stage';
import { runStagesInParallel } from '../../pipeline/parallel';
import { holdoutSplit } from '../../pipeline/splits';
import { trainAutoencoder } from '../../pipeline/train-autoencoder';
import { trainClassifier } from '../../pipeline/train-classifier';
import { S2SLoss, trainS2SNet } from '../../pipeline/train-s2snet';
import { AdversarialOverrides, RECIPE_NAMES, recipeByName } from '../../pipeline/recipes/catalogue';
import { DEFENDED_GRADIENTS, DefendedGradient, STAGE2_RECIPE_METADATA } from '../../pipeline/recipes/recipe';

/**
 * `s2s train classifier | autoencoder | s2snet | set | default`: the S2SNet
 * training pipeline (docs/protocol.md, "Training"). Each stage reads Fashion-MNIST
 * IDX files or an image folder (decoded to the model's geometry, e.g.
 * 224×224 RGB), checkpoints as it goes and resumes with --resume.
 */
interface CommonOpts {
  data?: string;
  holdout?: string;
  epochs: string;
  steps?: string;
  batch: string;
  lr: string;
  weightDecay?: string;
  averageDecay?: string;
  optimizer: 'adamw' | 'sgd';
  seed: string;
  checkpointDir?: string;
  resume?: boolean;
  provider: string;
  threads: string;
  out: string;
}

function int(v: string | undefined, flag: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < min) throw new UserError(`${flag} expects an integer ≥ ${min}, got '${v}'`);
  return x;
}

function positive(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new UserError(`${flag} expects a non-negative number, got '${v}'`);
  return x;
}

function numbers(v: string | undefined, flag: string): number[] | undefined {
  if (v === undefined) return undefined;
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) throw new UserError(`${flag} expects comma-separated numbers, got '${v}'`);
  return xs;
}

type AdvOpts = { advEps?: string; advIterations?: string; advAttack?: 'fgsm' | 'pgd'; advFraction?: string; advAgainst?: 'f' | 'defended'; advGradient?: DefendedGradient; advAscent?: 'ce' | 'kl' };

/** `--adv-*`: the recipe's adversarial inputs; `--adv-eps` is ε_max or ε_min:ε_max (per image ε ~ U(ε_min, ε_max)). */
function adversarialOverrides(o: AdvOpts): AdversarialOverrides {
  let epsMin: number | undefined;
  let epsMax: number | undefined;
  if (o.advEps !== undefined) {
    const parts = o.advEps.split(':');
    const xs = parts.map((p) => Number(p));
    if (parts.length > 2 || xs.some((x) => !Number.isFinite(x) || x < 0 || x > 1) || (xs.length === 2 && xs[0] > xs[1]) || xs[xs.length - 1] === 0) {
      throw new UserError(`--adv-eps expects ε_max or ε_min:ε_max in [0, 1] with ε_min ≤ ε_max and ε_max > 0, got '${o.advEps}'`);
    }
    [epsMin, epsMax] = xs.length === 2 ? xs : [0, xs[0]];
  }
  const fraction = positive(o.advFraction, '--adv-fraction');
  if (fraction !== undefined && !(fraction > 0 && fraction <= 1)) throw new UserError(`--adv-fraction must be in (0, 1], got '${o.advFraction}'`);
  return { epsMin, epsMax, iterations: int(o.advIterations, '--adv-iterations', 1), attack: o.advAttack, fraction, against: o.advAgainst, gradient: o.advGradient, ascent: o.advAscent };
}

/** Command defaults are the committed recipe's settings for that stage. */
const RECIPE_DEFAULTS = {
  classifier: { arch: DEFAULT_RECIPE.classifiers[0].arch, ...DEFAULT_RECIPE.classifiers[0].settings },
  autoencoder: { arch: DEFAULT_RECIPE.autoencoder.arch, ...DEFAULT_RECIPE.autoencoder.settings },
  // The command's default loss is the paper's, so are its settings; a named --recipe states its own.
  s2snet: PAPER_STAGE2.settings,
  smoothing: DEFAULT_SMOOTHING.settings,
};

function withCommon(c: Command, defaults: { epochs: number; batchSize: number; lr: number; weightDecay?: number; seed?: number }, out = true): Command {
  c
    .option('--data <dir>', 'training data: a folder with the Fashion-MNIST IDX files (default $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist) or an image folder')
    .option('--holdout <n>', 'images at the end of the training data kept out of training (validation; the detection threshold is calibrated there) [default: min(5000, 10%)]')
    .option('--epochs <n>', 'passes over the training data', String(defaults.epochs))
    .option('--steps <n>', 'stop after this many updates instead of --epochs')
    .option('--batch <n>', 'images per update', String(defaults.batchSize))
    .option('--lr <x>', 'peak learning rate (cosine schedule, 5% linear warm-up)', String(defaults.lr))
    .option('--weight-decay <x>', 'decoupled weight decay (AdamW) or L2 (SGD)', defaults.weightDecay === undefined ? undefined : String(defaults.weightDecay))
    .addOption(new Option('--optimizer <kind>', 'update rule').choices(['adamw', 'sgd']).default('adamw'))
    .option('--average-decay <d>', 'write an exponential moving average of the weights (decay d in [0, 1), e.g. 0.999; evaluations report it too) instead of the last step\'s weights [default: off]')
    .option('--seed <n>', 'seed of weight initialisation and shuffling', String(defaults.seed ?? 1))
    .option('--checkpoint-dir <dir>', 'keep a checkpoint here (every quarter epoch) so the run can be resumed')
    .option('--resume', 'continue from the checkpoint in --checkpoint-dir')
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'cpu')
    .option('--threads <n>', 'threads per operator (0 = all cores)', '0');
  return out ? c.requiredOption('--out <file>', 'where to write the trained ONNX model') : c;
}

function settingsOf(o: CommonOpts): StageSettings {
  return {
    epochs: int(o.epochs, '--epochs', 1)!,
    steps: int(o.steps, '--steps', 1),
    batchSize: int(o.batch, '--batch', 1)!,
    lr: positive(o.lr, '--lr')!,
    weightDecay: positive(o.weightDecay, '--weight-decay'),
    optimizer: o.optimizer,
    seed: int(o.seed, '--seed')!,
    averageDecay: averageDecay(o.averageDecay),
  };
}

function averageDecay(v: string | undefined): number | undefined {
  const d = positive(v, '--average-decay');
  if (d !== undefined && !(d < 1)) throw new UserError(`--average-decay must be in [0, 1), got '${v}'`);
  return d || undefined;
}

async function trainingData(o: CommonOpts, labelled: boolean, geometry: Geometry) {
  const src: DataSource = await openData(o.data, { split: 'train', labelled, geometry });
  const n = int(o.holdout, '--holdout') ?? Math.min(5000, Math.floor(src.dataset.size / 10));
  const split = holdoutSplit(src.dataset, n);
  process.stderr.write(`data: ${src.description}; training on ${split.train.size}, ${n} held out\n`);
  return { src, split, tag: `${src.description}|holdout ${n}` };
}

function common(o: CommonOpts) {
  return {
    provider: parseProvider(o.provider),
    intraOpThreads: int(o.threads, '--threads')!,
    checkpointDir: o.checkpointDir,
    resume: o.resume,
  };
}

function geometryOf(g: Graph, what: string): Geometry {
  const [c, h, w] = imageGeometry(g, what);
  if (c !== 1 && c !== 3) throw new UserError(`${what} takes ${c}-channel images; only 1 (grey) and 3 (RGB) are supported`);
  return { channels: c, height: h, width: w };
}

/** The starting model: a named architecture built here, or an ONNX file to (re)train. */
async function startingModel(o: { arch?: string; model?: string; size?: string; channels?: string; seed: string }, kind: 'classifier' | 'autoencoder', classes?: () => Promise<number>): Promise<Graph> {
  if (o.model) {
    if (o.arch) throw new UserError('give either --arch or --model, not both');
    return loadModel(o.model);
  }
  const name = o.arch ?? RECIPE_DEFAULTS[kind].arch;
  const a = getArchitecture(name);
  if (a.kind !== kind) throw new UserError(`--arch ${name} is an ${a.kind}; use one of ${architectureNames(kind).join(', ')}`);
  const size = int(o.size, '--size', 1);
  return a.build({
    seed: int(o.seed, '--seed')!,
    channels: int(o.channels, '--channels', 1),
    height: size,
    width: size,
    classes: classes ? await classes() : undefined,
  });
}

function finish(out: string, g: Graph, r: StageResult, extra: Record<string, unknown> = {}): void {
  mkdirSync(dirname(resolve(out)), { recursive: true });
  saveModel(g, out);
  const e = r.finalEval;
  const summary = {
    out,
    steps: r.train.steps,
    seconds: Number(r.seconds.toFixed(1)),
    imagesPerSecond: Number(r.train.imagesPerSecond.toFixed(1)),
    provider: r.provider,
    ...(e ? { heldOut: { images: e.images, loss: e.loss, ...(e.accuracy !== undefined ? { top1: e.accuracy } : {}), ...(e.psnr !== undefined ? { psnrDb: e.psnr } : {}) } } : {}),
    ...extra,
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
}

export function register(program: Command): void {
  const train = program.command('train').description('train the S2SNet pipeline: classifier, autoencoder (stage 1), S2SNet decoder (stage 2), model sets');

  withCommon(
    train
      .command('classifier')
      .description('train a classifier with cross-entropy on labelled images')
      .option('--arch <name>', `architecture to build (${architectureNames('classifier').join(', ')}) [default: ${RECIPE_DEFAULTS.classifier.arch}]`)
      .option('--model <file>', 'start from this ONNX classifier instead (input [N,C,H,W], logits [N,K])')
      .option('--size <n>', "image side for --arch (default: the architecture's)")
      .option('--channels <n>', "image channels for --arch (default: the architecture's)")
      .option('--gaussian-augment <sigma>', 'train on x + N(0, σ²) (Cohen et al.’s recipe for randomized smoothing; docs/certification.md)'),
    RECIPE_DEFAULTS.classifier,
  ).action(async (o: CommonOpts & { arch?: string; model?: string; size?: string; channels?: string; gaussianAugment?: string }) => {
    const settings = settingsOf(o);
    const gaussianAugment = positive(o.gaussianAugment, '--gaussian-augment') || undefined;
    let data: Awaited<ReturnType<typeof trainingData>> | undefined;
    const model = await startingModel(o, 'classifier', async () => {
      // The class count comes from the data; opening it needs the geometry of the architecture.
      const a = getArchitecture(o.arch ?? RECIPE_DEFAULTS.classifier.arch);
      const size = int(o.size, '--size', 1);
      const geo = { channels: (int(o.channels, '--channels', 1) ?? a.defaults.channels) as 1 | 3, height: size ?? a.defaults.height, width: size ?? a.defaults.width };
      data = await trainingData(o, true, geo);
      return data.src.labels!.length;
    });
    data ??= await trainingData(o, true, geometryOf(model, 'classifier'));
    const r = await trainClassifier({ ...common(o), label: 'classifier', model, train: data.split.train, eval: data.split.holdout.size ? data.split.holdout : undefined, settings, dataTag: data.tag, gaussianAugment });
    finish(o.out, r.graph, r, { labels: data.src.labels });
  });

  withCommon(
    train
      .command('autoencoder')
      .description('stage 1: train an autoencoder to reconstruct its input (unsupervised, MSE); labels are ignored')
      .option('--arch <name>', `architecture to build (${architectureNames('autoencoder').join(', ')}) [default: ${RECIPE_DEFAULTS.autoencoder.arch}]`)
      .option('--model <file>', 'start from this ONNX autoencoder instead (input [N,C,H,W], reconstruction [N,C,H,W])')
      .option('--size <n>', "image side for --arch (default: the architecture's)")
      .option('--channels <n>', "image channels for --arch (default: the architecture's)"),
    RECIPE_DEFAULTS.autoencoder,
  ).action(async (o: CommonOpts & { arch?: string; model?: string; size?: string; channels?: string }) => {
    const settings = settingsOf(o);
    const model = await startingModel(o, 'autoencoder');
    const data = await trainingData(o, false, geometryOf(model, 'autoencoder'));
    const r = await trainAutoencoder({ ...common(o), label: 'autoencoder', model, train: data.split.train, eval: data.split.holdout.size ? data.split.holdout : undefined, settings, dataTag: data.tag });
    finish(o.out, r.graph, r);
  });

  withCommon(
    train
      .command('s2snet')
      .description('stage 2: fine-tune the decoder of an autoencoder so that the frozen classifier classifies its reconstructions (encoder and classifier frozen)')
      .requiredOption('--classifier <file>', 'the classifier f (ONNX; any classifier whose ops the autodiff covers)')
      .requiredOption('--autoencoder <file>', 'the stage-1 autoencoder (parameters named encoder.* / decoder.*)')
      .addOption(new Option('--loss <kind>', 'ce: cross-entropy of f(s(x)) against the labels; kl: KL(f(x) ‖ f(s(x))), label-free').choices(['ce', 'kl']).default('ce'))
      .addOption(new Option('--recipe <name>', 'a named stage-2 recipe (docs/recipes.md); overrides --loss').choices([...RECIPE_NAMES]))
      .option('--noise-sigma <s>', "the recipe's input-noise σ (adds Gaussian noise to a recipe without any)")
      .addOption(new Option('--noise-kind <k>', "the recipe's input-noise distribution").choices(['gaussian', 'uniform', 'sign']))
      .option('--adv-eps <eps>', "the recipe's adversarial ε: ε_max, or ε_min:ε_max (per image ε ~ U(ε_min, ε_max)); adds adversarial inputs against the current f ∘ s to a recipe without any")
      .option('--adv-iterations <k>', 'PGD iterations of the adversarial inputs')
      .addOption(new Option('--adv-attack <a>', 'how the adversarial inputs are made').choices(['fgsm', 'pgd']))
      .option('--adv-fraction <p>', 'fraction of each batch made adversarial (the rest stays clean)')
      .addOption(new Option('--adv-against <m>', 'f: the frozen classifier; defended: the current f ∘ s').choices(['f', 'defended']))
      .addOption(new Option('--adv-gradient <g>', 'examples of the current f ∘ s by its true gradient, by BPDA (f’s gradient passed straight through s), alternating the two per batch, or rotating them with f’s own gradient (examples of f alone) per batch').choices([...DEFENDED_GRADIENTS]))
      .addOption(new Option('--adv-ascent <l>', "what the adversarial inputs' PGD steps ascend: ce, the label's cross-entropy; kl, KL(f(s(x)) ‖ f(s(x′))) from the clean image's prediction (TRADES' inner maximisation)").choices(['ce', 'kl']))
      .option('--trades-beta <b>', "β of a trades recipe's KL term (CE(f(s(x)), y) + β·KL(f(s(x)) ‖ f(s(x′))))")
      .option('--mean <values>', "the classifier's input normalisation (x − mean)/std, one value or one per channel", '0')
      .option('--std <values>', 'see --mean', '1')
      .option('--defended <file>', 'also write f ∘ s composed into one graph (normalisation included)')
      .option('--train-encoder', "a variant outside the paper's structure: train the encoder with the decoder (f stays frozen)"),
    RECIPE_DEFAULTS.s2snet,
  ).action(async (o: CommonOpts & AdvOpts & { classifier: string; autoencoder: string; loss: S2SLoss; recipe?: string; noiseSigma?: string; noiseKind?: 'gaussian' | 'uniform' | 'sign'; tradesBeta?: string; mean: string; std: string; defended?: string; trainEncoder?: boolean }) => {
    // Options first, so a mistyped one fails before any model or data is read.
    const normalisation: Normalisation = { mean: numbers(o.mean, '--mean')!, std: numbers(o.std, '--std')! };
    if (normalisation.std.some((v) => v <= 0)) throw new UserError('--std values must be positive');
    const sigma = o.noiseSigma === undefined ? undefined : positive(o.noiseSigma, '--noise-sigma');
    if (sigma !== undefined && !(sigma <= 1)) throw new UserError(`--noise-sigma must be in (0, 1], got ${o.noiseSigma}`);
    const beta = positive(o.tradesBeta, '--trades-beta');
    const recipe = recipeByName(o.recipe ?? `paper-${o.loss}`, { sigma, noiseKind: o.noiseKind, adversarial: adversarialOverrides(o), beta });
    const settings = settingsOf(o);
    const classifier = loadModel(o.classifier);
    const autoencoder = loadModel(o.autoencoder);
    const data = await trainingData(o, recipe.loss === 'ce' || recipe.loss === 'trades', geometryOf(autoencoder, 'autoencoder'));
    const r = await trainS2SNet({
      ...common(o),
      label: `s2snet (${recipe.name})`,
      autoencoder,
      classifier,
      normalisation,
      loss: o.loss,
      recipe,
      trainEncoder: o.trainEncoder ?? false,
      train: data.split.train,
      eval: data.split.holdout.size && data.src.labels ? data.split.holdout : undefined,
      settings,
      dataTag: data.tag,
    });
    if (o.defended) {
      mkdirSync(dirname(resolve(o.defended)), { recursive: true });
      saveModel(composeDefended(r.s2snet, canonicalClassifier(classifier, normalisation)), o.defended);
    }
    finish(o.out, r.s2snet, r, { trained: `${r.trainedParameters.length} ${o.trainEncoder ? 'encoder and decoder' : 'decoder'} tensors`, recipe: JSON.parse(r.s2snet.metadata?.[STAGE2_RECIPE_METADATA] ?? 'null'), cpuSeconds: Number(r.cpuSeconds.toFixed(1)), ...(o.defended ? { defended: o.defended } : {}) });
  });

  withCommon(
    train
      .command('smoothing')
      .description("train a model set's smoothing denoiser (the decoder of its autoencoder on noisy images through the frozen classifier, at σ; encoder and classifier frozen) and add it to the set: smoothing.onnx, manifest smoothing (docs/certification.md)")
      .requiredOption('--models <dir>', 'the model set (its autoencoder and classifier are used, its sha256s checked first)')
      .option('--sigma <s>', 'the smoothing noise σ the denoiser is trained for (pixels in [0, 1])', String(DEFAULT_SMOOTHING.sigma))
      .addOption(new Option('--recipe <name>', 'stability: KL to f(x), label-free (Salman et al.); noise-ce: cross-entropy against the labels; noise-kl: KL, soft').choices([...SMOOTHING_RECIPES]).default(DEFAULT_SMOOTHING.recipe ?? 'stability'))
      .option('--pretrain-epochs <n>', "epochs of MSE denoising at σ before the recipe (Salman et al.'s order; 0: none; --steps bounds each phase)", String(DEFAULT_SMOOTHING.pretrainEpochs ?? 0))
      .option('--train-encoder', `a named variant outside the paper’s structure: train the encoder with the decoder (f stays frozen)${DEFAULT_SMOOTHING.trainEncoder ? ' [default, as for the default set]' : ''}`)
      .option('--no-train-encoder', 'keep the encoder frozen, bit for bit (the paper’s structure)')
      .option('--set-version <v>', 'the version the set gets (default: unchanged)'),
    RECIPE_DEFAULTS.smoothing,
    false,
  ).action(async (o: CommonOpts & { models: string; sigma: string; recipe: SmoothingRecipeName; pretrainEpochs: string; trainEncoder?: boolean; setVersion?: string }) => {
    const sigma = positive(o.sigma, '--sigma')!;
    if (!(sigma > 0 && sigma <= 1)) throw new UserError(`--sigma must be in (0, 1], got ${o.sigma}`);
    const recipe = smoothingRecipe(sigma, o.recipe);
    const plan: SmoothingPlan = { sigma, recipe: o.recipe, pretrainEpochs: int(o.pretrainEpochs, '--pretrain-epochs', 0) || undefined, trainEncoder: (o.trainEncoder ?? DEFAULT_SMOOTHING.trainEncoder) || undefined };
    const settings = settingsOf(o);
    const set = await loadModelSet(o.models);
    const m = set.manifest;
    if (!set.paths.autoencoder) throw new UserError(`model set ${o.models} has no autoencoder (files.autoencoder): the smoothing denoiser is trained from it`);
    const autoencoder = loadModel(set.paths.autoencoder);
    const data = await trainingData(o, recipe.loss === 'ce' || recipe.loss === 'trades', geometryOf(autoencoder, 'autoencoder'));
    const r = await trainSmoothingDenoiser({
      ...common(o),
      ...plan,
      label: `smoothing denoiser (${recipe.name})`,
      autoencoder,
      classifier: loadModel(set.paths.classifier),
      normalisation: { mean: m.input.mean, std: m.input.std },
      train: data.split.train,
      eval: data.split.holdout.size ? data.split.holdout : undefined,
      settings,
      dataTag: data.tag,
    });
    const manifest = attachSmoothing(set.dir, r.s2snet, { sigma, training: smoothingTrainingRecord(plan, settings), version: o.setVersion, encoderTrained: plan.trainEncoder });
    process.stdout.write(JSON.stringify({ dir: set.dir, version: manifest.version, smoothing: manifest.smoothing, files: { smoothing: manifest.files.smoothing }, steps: r.train.steps, seconds: Number(r.seconds.toFixed(1)), cpuSeconds: Number(r.cpuSeconds.toFixed(1)), ...(r.pretraining ? { pretraining: { steps: r.pretraining.steps, cpuSeconds: Number(r.pretraining.cpuSeconds.toFixed(1)) } } : {}), ...(r.finalEval ? { heldOut: r.finalEval } : {}) }, null, 2) + '\n');
  });

  train
    .command('set')
    .description('assemble a model set: write the four graphs, measure top-1 and PSNR on the test data, calibrate the detection threshold on held-out clean training images, write manifest.json')
    .requiredOption('--classifier <file>', 'the classifier f')
    .requiredOption('--autoencoder <file>', 'the stage-1 autoencoder')
    .requiredOption('--s2snet <file>', 'the stage-2 S2SNet')
    .requiredOption('--out <dir>', 'the model-set folder to write (its name is the folder name unless --name)')
    .option('--name <name>', 'model-set name')
    .option('--set-version <v>', 'model-set version', '1.0.0')
    .option('--description <text>', 'one line saying what the set is')
    .option('--data <dir>', 'training data the held-out calibration images come from (Fashion-MNIST folder or image folder)')
    .option('--test-data <dir>', 'labelled test data (default: the Fashion-MNIST test split of --data)')
    .option('--holdout <n>', 'the held-out images at the end of the training data (must match training) [default: min(5000, 10%)]')
    .option('--fpr <x>', 'false-positive rate of the detection threshold on the held-out images', '0.05')
    .option('--mean <values>', "the classifier's input normalisation (x − mean)/std", '0')
    .option('--std <values>', 'see --mean', '1')
    .option('--labels <names>', 'comma-separated label names (default: from the data)')
    .option('--limit <n>', 'evaluate only the first n test and held-out images')
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'cpu')
    .action(async (o: { classifier: string; autoencoder: string; s2snet: string; out: string; name?: string; setVersion: string; description?: string; data?: string; testData?: string; holdout?: string; fpr: string; mean: string; std: string; labels?: string; limit?: string; provider: string }) => {
      const classifier = loadModel(o.classifier);
      const geo = geometryOf(classifier, 'classifier');
      const trainSrc = await openData(o.data, { split: 'train', labelled: false, geometry: geo });
      const testSrc = await openData(o.testData ?? o.data, { split: 'test', labelled: true, geometry: geo });
      const n = int(o.holdout, '--holdout') ?? Math.min(5000, Math.floor(trainSrc.dataset.size / 10));
      const split = holdoutSplit(trainSrc.dataset, n);
      const labels = o.labels ? o.labels.split(',').map((s) => s.trim()) : testSrc.labels!;
      const name = o.name ?? resolve(o.out).split(/[\\/]/).pop()!;
      const s2snet = loadModel(o.s2snet);
      const a = await assembleModelSet({
        dir: o.out,
        name,
        version: o.setVersion,
        description: o.description,
        labels,
        classifier,
        autoencoder: loadModel(o.autoencoder),
        s2snet,
        ...(s2snet.metadata?.[STAGE2_RECIPE_METADATA] ? { training: { s2snet: JSON.parse(s2snet.metadata[STAGE2_RECIPE_METADATA]) } } : {}),
        normalisation: { mean: numbers(o.mean, '--mean')!, std: numbers(o.std, '--std')! },
        test: testSrc.dataset,
        testName: testSrc.description,
        holdout: split.holdout,
        holdoutName: `the last ${n} images of ${trainSrc.description}`,
        falsePositiveRate: positive(o.fpr, '--fpr'),
        provider: parseProvider(o.provider),
        limit: int(o.limit, '--limit', 1),
      });
      process.stdout.write(JSON.stringify({ dir: o.out, threshold: a.threshold, metrics: a.manifest.metrics }, null, 2) + '\n');
    });

  train
    .command('default')
    .description('rebuild the committed default model sets from the Fashion-MNIST files with fixed seeds (src/pipeline/default-set.ts)')
    .option('--out <dir>', 'models folder to write the sets into', 'models')
    .option('--work <dir>', 'checkpoints and finished stage graphs (tmp/ is git-ignored)', join('tmp', 'train-default'))
    .option('--data <dir>', 'folder with the Fashion-MNIST IDX files (default $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)')
    .option('--resume', 'continue an interrupted run from the checkpoints and finished stages in --work')
    .option('--only <stages>', `run only these stages, comma-separated (${stageIds(DEFAULT_RECIPE).join(', ')}); the stages they build on must be finished in --work`)
    .option('--jobs <n>', 'training stages run side by side in child processes, each as soon as the stages it needs are done (1 = one after another in this process)', String(availableParallelism()))
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'cpu')
    .option('--threads <n>', 'threads per operator (0 = all cores) [default: cores / jobs for training stages, all cores for evaluation]')
    .option('--smoke <steps>', 'plumbing check: every stage only this many steps, evaluations on 200 images (the result is not a usable model)')
    .action(async (o: { out: string; work: string; data?: string; resume?: boolean; only?: string; jobs: string; provider: string; threads?: string; smoke?: string }) => {
      const steps = int(o.smoke, '--smoke', 1);
      const jobs = int(o.jobs, '--jobs', 1)!;
      const threadsFlag = int(o.threads, '--threads');
      const only = o.only?.split(',').map((x) => x.trim()).filter(Boolean) ?? stageIds(DEFAULT_RECIPE);
      const common = {
        out: o.out,
        work: o.work,
        data: o.data,
        provider: parseProvider(o.provider),
        recipe: DEFAULT_RECIPE,
        smoke: steps ? { steps, images: 200 } : undefined,
      };
      const training = only.filter((s) => s !== 'sets');
      if (jobs === 1 || training.length <= 1) {
        const r = await buildDefaultSets({ ...common, resume: o.resume, only, intraOpThreads: threadsFlag ?? 0 });
        process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        return;
      }
      const t0 = performance.now();
      const log = (l: string) => process.stderr.write(l + '\n');
      const threads = threadsFlag ?? Math.max(1, Math.floor(availableParallelism() / jobs));
      const records = await runStagesInParallel({
        stages: training,
        jobs,
        log,
        argsFor: (stage) => [
          'train', 'default', '--only', stage, '--jobs', '1', '--out', o.out, '--work', o.work, '--provider', o.provider, '--threads', String(threads),
          ...(o.data ? ['--data', o.data] : []),
          ...(o.resume ? ['--resume'] : []),
          ...(o.smoke ? ['--smoke', o.smoke] : []),
        ],
      });
      // The sets are assembled from the stage graphs just written, with every core.
      const sets = only.includes('sets') ? await buildDefaultSets({ ...common, resume: true, only: ['sets'], intraOpThreads: threadsFlag ?? 0, log }) : undefined;
      const seconds = (performance.now() - t0) / 1000;
      log(`all done in ${(seconds / 60).toFixed(1)} min`);
      process.stdout.write(JSON.stringify({ seconds, stages: records, sets: sets?.sets ?? [] }, null, 2) + '\n');
    });
}
