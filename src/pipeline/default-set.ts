import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildArchitecture } from '../architectures/architectures';
import { FASHION_MNIST_LABELS, fashionMnistDir, loadFashionMnist } from '../data/fashionMnist';
import { Graph } from '../onnx/graph';
import { loadModel, saveModel } from '../onnx/io';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { assembleModelSet } from './assemble';
import { canonicalClassifier } from './compose';
import { evaluate } from './evaluate';
import { sha256Of } from './model-set';
import { progressBar } from './progress';
import { StageResult, StageSettings } from './run-stage';
import { holdoutSplit } from './splits';
import { trainAutoencoder } from './train-autoencoder';
import { trainClassifier } from './train-classifier';
import { S2SLoss, trainS2SNet } from './train-s2snet';

/**
 * The recipe of the committed default model sets, from the Fashion-MNIST
 * files to models/: fixed seeds, fixed settings, every stage checkpointed
 * under `work` so an interrupted run picks up where it stopped.
 *
 *   1. classifiers (resnet-small for the default set, vgg-small for the
 *      second defended set, alexnet-small and mlp for the transfer study)
 *   2. stage 1: one segnet-small autoencoder (unsupervised, MSE), shared
 *   3. stage 2: an S2SNet per defended classifier (decoder only, CE)
 *   4. each defended set assembled: metrics on the 10,000 test images,
 *      threshold on the 5,000 held-out training images, manifest
 *
 * The last 5,000 training images are held out of every stage: the
 * detection threshold is calibrated on them.
 */
export interface ClassifierRecipe {
  arch: string;
  settings: StageSettings;
  /** model-set folder for a defended set (with its own S2SNet); absent = transfer-study classifier only */
  set?: string;
  description?: string;
}

export interface Recipe {
  holdout: number;
  classifiers: ClassifierRecipe[];
  autoencoder: { arch: string; settings: StageSettings };
  s2snet: { loss: S2SLoss; settings: StageSettings };
  version: string;
}

export const DEFAULT_RECIPE: Recipe = {
  version: '1.0.0',
  holdout: 5000,
  classifiers: [
    {
      arch: 'resnet-small',
      set: 'fashion-mnist',
      description: 'Fashion-MNIST, ResNet-20 classifier defended by a SegNet S2SNet (default set)',
      settings: { epochs: 4, batchSize: 128, lr: 3e-3, weightDecay: 5e-4, seed: 1 },
    },
    {
      arch: 'vgg-small',
      set: 'fashion-mnist-vgg',
      description: 'Fashion-MNIST, VGG-style classifier defended by its own SegNet S2SNet',
      settings: { epochs: 3, batchSize: 128, lr: 2e-3, weightDecay: 5e-4, seed: 2 },
    },
    { arch: 'alexnet-small', settings: { epochs: 2, batchSize: 128, lr: 1e-3, weightDecay: 5e-4, seed: 3 } },
    { arch: 'mlp', settings: { epochs: 5, batchSize: 128, lr: 1e-3, weightDecay: 1e-4, seed: 4 } },
  ],
  autoencoder: { arch: 'segnet-small', settings: { epochs: 2, batchSize: 128, lr: 3e-3, weightDecay: 0, seed: 5 } },
  s2snet: { loss: 'ce', settings: { epochs: 1, batchSize: 128, lr: 1e-3, weightDecay: 0, seed: 6 } },
};

export const TRANSFER_FOLDER = 'fashion-mnist-classifiers';

export interface DefaultSetOptions {
  /** the models folder the sets are written into */
  out: string;
  /** checkpoints and intermediate graphs */
  work: string;
  data?: string;
  resume?: boolean;
  provider?: ProviderChoice;
  intraOpThreads?: number;
  recipe?: Recipe;
  /** shrink every stage to this many steps and evaluations to this many images (smoke tests) */
  smoke?: { steps: number; images: number };
  log?: (line: string) => void;
}

export interface DefaultSetReport {
  seconds: number;
  stages: Array<{ stage: string; seconds: number; steps: number }>;
  sets: Array<{ name: string; dir: string; top1: Record<string, number>; psnrDb: Record<string, number>; threshold: number }>;
  classifiers: Array<{ arch: string; path: string; top1: number }>;
}

export async function buildDefaultSets(o: DefaultSetOptions): Promise<DefaultSetReport> {
  const recipe = o.recipe ?? DEFAULT_RECIPE;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t0 = performance.now();
  const dir = fashionMnistDir(o.data);
  if (!existsSync(dir)) throw new UserError(`Fashion-MNIST not found at ${dir}; apt-get install dataset-fashion-mnist, or pass --data`);
  const trainAll = loadFashionMnist({ dir, split: 'train' });
  const test = loadFashionMnist({ dir, split: 'test' });
  const split = holdoutSplit(trainAll, Math.min(recipe.holdout, Math.floor(trainAll.size / 5)));
  const holdoutName = `Fashion-MNIST train rows ${split.holdoutStart}–${trainAll.size - 1} (held out of all training)`;
  const dataTag = `${trainAll.files.images}:${trainAll.size}:holdout${trainAll.size - split.holdoutStart}`;
  mkdirSync(o.work, { recursive: true });
  const stages: DefaultSetReport['stages'] = [];
  const settingsOf = (s: StageSettings): StageSettings => (o.smoke ? { ...s, steps: o.smoke.steps } : s);
  const common = { provider: o.provider, intraOpThreads: o.intraOpThreads, resume: o.resume, dataTag, log };
  const evalLimit = o.smoke?.images;
  const validation = o.smoke ? undefined : split.holdout;
  const record = (stage: string, r: StageResult) => {
    stages.push({ stage, seconds: round(r.seconds, 1), steps: r.train.steps });
    log(`${stage}: done in ${r.seconds.toFixed(0)} s (${r.train.steps} steps, ${r.train.imagesPerSecond.toFixed(0)} img/s, ${r.provider})`);
  };
  // A finished stage leaves its graph in `work`; with --resume it is reused instead of retrained.
  const cached = async (name: string, stage: () => Promise<Graph>): Promise<Graph> => {
    const path = join(o.work, `${name}.onnx`);
    if (o.resume && existsSync(path)) {
      log(`${name}: reusing ${path}`);
      return loadModel(path);
    }
    const g = await stage();
    saveModel(g, path);
    return g;
  };

  const classifiers = new Map<string, Graph>();
  const trainingInfo = new Map<string, Record<string, unknown>>();
  for (const c of recipe.classifiers) {
    const g = await cached(`classifier-${c.arch}`, async () => {
      const r = await trainClassifier({
        ...common,
        label: `classifier ${c.arch}`,
        model: buildArchitecture(c.arch, { seed: c.settings.seed, classes: FASHION_MNIST_LABELS.length }),
        train: split.train,
        eval: validation,
        settings: settingsOf(c.settings),
        checkpointDir: join(o.work, `classifier-${c.arch}`),
      });
      record(`classifier ${c.arch}`, r);
      return r.graph;
    });
    classifiers.set(c.arch, g);
    trainingInfo.set(c.arch, { arch: c.arch, ...c.settings, optimizer: c.settings.optimizer ?? 'adamw', schedule: 'cosine, 5% linear warm-up' });
  }

  const ae = await cached(`autoencoder-${recipe.autoencoder.arch}`, async () => {
    const r = await trainAutoencoder({
      ...common,
      label: `autoencoder ${recipe.autoencoder.arch}`,
      model: buildArchitecture(recipe.autoencoder.arch, { seed: recipe.autoencoder.settings.seed }),
      train: split.train,
      eval: validation,
      settings: settingsOf(recipe.autoencoder.settings),
      checkpointDir: join(o.work, `autoencoder-${recipe.autoencoder.arch}`),
    });
    record(`autoencoder ${recipe.autoencoder.arch}`, r);
    return r.graph;
  });

  const sets: DefaultSetReport['sets'] = [];
  for (const c of recipe.classifiers.filter((x) => x.set)) {
    const f = classifiers.get(c.arch)!;
    const s2snet = await cached(`s2snet-${c.arch}`, async () => {
      const r = await trainS2SNet({
        ...common,
        label: `s2snet for ${c.arch}`,
        autoencoder: ae,
        classifier: f,
        loss: recipe.s2snet.loss,
        train: split.train,
        eval: validation,
        settings: settingsOf(recipe.s2snet.settings),
        checkpointDir: join(o.work, `s2snet-${c.arch}`),
      });
      record(`s2snet for ${c.arch}`, r);
      return r.s2snet;
    });
    const setDir = join(o.out, c.set!);
    const a = await assembleModelSet({
      dir: setDir,
      name: c.set!,
      version: recipe.version,
      description: c.description,
      labels: [...FASHION_MNIST_LABELS],
      classifier: f,
      autoencoder: ae,
      s2snet,
      test,
      testName: `Fashion-MNIST test (${test.size} images)`,
      holdout: split.holdout,
      holdoutName,
      provider: o.provider,
      limit: evalLimit,
      training: {
        recipe: 'src/pipeline/default-set.ts (s2s train default)',
        classifier: trainingInfo.get(c.arch),
        autoencoder: { arch: recipe.autoencoder.arch, loss: 'mse', ...recipe.autoencoder.settings },
        s2snet: { loss: recipe.s2snet.loss, trained: 'decoder.* only (encoder and classifier frozen)', ...recipe.s2snet.settings },
        trainingImages: split.train.size,
      },
    });
    const m = a.manifest.metrics as { top1: Record<string, number>; psnrDb: Record<string, number> };
    sets.push({ name: c.set!, dir: setDir, top1: m.top1, psnrDb: m.psnrDb, threshold: a.threshold });
    log(`${c.set}: top-1 f ${pct(m.top1.classifier)}, f∘AE ${pct(m.top1.autoencoder)}, f∘s ${pct(m.top1.s2snet)}; PSNR AE ${m.psnrDb.autoencoder} dB, s ${m.psnrDb.s2snet} dB; threshold ${a.threshold.toPrecision(4)}`);
  }

  // The classifiers of the transfer study, each measured on the test set, listed with their sha256.
  const transferDir = join(o.out, TRANSFER_FOLDER);
  mkdirSync(transferDir, { recursive: true });
  const listed: DefaultSetReport['classifiers'] = [];
  const index: Array<Record<string, unknown>> = [];
  for (const c of recipe.classifiers) {
    const path = c.set ? join(o.out, c.set, 'classifier.onnx') : join(transferDir, `${c.arch}.onnx`);
    if (!c.set) saveModel(canonicalClassifier(classifiers.get(c.arch)!), path);
    const r = await evaluate({ classifier: path }, test, { provider: o.provider, limit: evalLimit, progress: evalLimit ? undefined : progressBar(`${c.arch}: test`, test.size) });
    const rel = relative(transferDir, path);
    listed.push({ arch: c.arch, path, top1: r.classifier.top1 });
    index.push({ arch: c.arch, path: rel, sha256: sha256Of(path), top1: round(r.classifier.top1, 6), correct: r.classifier.correct, testImages: r.n, ...(c.set ? { modelSet: c.set } : {}), training: trainingInfo.get(c.arch) });
  }
  writeFileSync(
    join(transferDir, 'classifiers.json'),
    JSON.stringify(
      {
        description: 'Fashion-MNIST classifiers of different families for the transferability study (PROTOCOL.md, Transferability). Paths are relative to this file; input [N,1,28,28] in [0,1], output logits [N,10].',
        labels: [...FASHION_MNIST_LABELS],
        input: { channels: 1, height: 28, width: 28, layout: 'NCHW', range: [0, 1], mean: [0], std: [1] },
        classifiers: index,
      },
      null,
      2,
    ) + '\n',
  );
  const seconds = (performance.now() - t0) / 1000;
  log(`default sets built in ${(seconds / 60).toFixed(1)} min`);
  return { seconds, stages, sets, classifiers: listed };
}

const round = (v: number, d: number) => Number(v.toFixed(d));
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
