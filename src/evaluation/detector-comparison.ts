import { Attack } from '../attacks/attack';
import { bim } from '../attacks/bim';
import { JointOracle } from '../attacks/joint';
import { PenalisedOracle } from '../attacks/penalised';
import { argmax } from '../attacks/objective';
import { GradientOracle, OnnxGradientOracle } from '../attacks/oracle';
import { streamSeed } from '../attacks/seeding';
import { Dataset } from '../data/dataset';
import { openData } from '../pipeline/data';
import { Progress, progressBar, silentProgress } from '../pipeline/progress';
import { thresholdAt } from '../pipeline/scores';
import { holdoutSplit } from '../pipeline/splits';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { CANDIDATE_NAMES, CandidateName, CandidateScorer, CandidateScores, NoiseDraws, candidateDescriptions, candidatePasses } from './detector-candidates';
import { ScoreRates, compareDetections, scoreRates } from './detector-rates';
import { ENSEMBLE_DEFAULTS, memberAttack } from './ensemble';
import { penultimateValue } from './feature-layer';
import { FeatureMseScore } from './feature-penalty';
import { loadEvalModels } from './models';
import { selectRows } from './selection';
import { ModelKey, setting } from './settings';

/**
 * `s2s eval detectors` (docs/detectors.md): which cheap score tells
 * adversarial inputs from clean ones best. Adversarial examples are made on
 * a seeded subset of the test split, as `s2s eval --limit/--seed` selects it,
 * in the undefended setting (gradients of f) and the detector-aware one
 * (fools f and f ∘ s together, attacks/joint.ts); every candidate score is
 * computed for the clean and the adversarial images, and its threshold is
 * calibrated at the manifest's false-positive rate on the clean held-out
 * training images, as `s2s train set` calibrates the KL's.
 */
export type DetectorAttackName = 'bim' | 'apgd-ce';
export const DETECTOR_ATTACKS: readonly DetectorAttackName[] = ['bim', 'apgd-ce'];

/**
 * The settings compared: the detector's own goal (undefended), the attack
 * that knows the KL detector (detector-aware, attacks/joint.ts), and the one
 * that knows the feature-space detector (feature-aware, attacks/penalised.ts:
 * L(f ∘ s) less the feature-space error over its threshold, and an example
 * counts only under that threshold). Each candidate score is measured
 * against all three; the one a score is meant for is the attack aware of it.
 */
export type DetectorSettingName = 'undefended' | 'detector-aware' | 'feature-aware';
export interface DetectorSetting {
  name: DetectorSettingName;
  /** which model judges the example */
  target: ModelKey;
  description: string;
}
const fromTable = (name: 'undefended' | 'detector-aware'): DetectorSetting => {
  const s = setting(name);
  return { name, target: s.target, description: s.description };
};
export const DETECTOR_SETTINGS: readonly DetectorSetting[] = [
  fromTable('undefended'),
  fromTable('detector-aware'),
  {
    name: 'feature-aware',
    target: 'fs',
    description: 'gradients of L(f ∘ s) − w · feature-mse / its threshold, an example counting only under that threshold: fools f ∘ s past the feature-space detector; evaluated on f ∘ s',
  },
];

export interface DetectorOptions {
  models: string;
  data?: string;
  limit?: number;
  seed: number;
  eps: number;
  attack: DetectorAttackName;
  iterations?: number;
  noise?: Partial<NoiseDraws>;
  /** w of the feature-aware attack: the weight of the feature-space error, in units of its threshold (default 1) */
  featureWeight?: number;
  /** held-out training images (the last N of the training split); default min(5000, 10 %) as `s2s train` */
  holdout?: number;
  falsePositiveRate?: number;
  batchSize?: number;
  provider?: ProviderChoice;
  threads?: number;
  progress?: boolean;
}

export interface DetectorSettingResult {
  setting: string;
  description: string;
  /** images attacked (the judged model classifies them correctly clean) and those the attack broke */
  attacked: number;
  successful: number;
  scores: Record<CandidateName, ScoreRates>;
  /** per candidate against the KL: successful examples only one of the two flags, and McNemar's p */
  versusKl: Record<CandidateName, { onlyCandidate: number; onlyKl: number; pValue: number }>;
  /** per selected image, per candidate: the adversarial example's score */
  adversarialScores: Record<CandidateName, number[]>;
}

export interface DetectorResults {
  schema: 's2s-detectors';
  version: 1;
  modelSet: { dir: string; name: string; version: string; manifestThreshold: number };
  data: { test: string; selected: number; rows: number[]; calibration: string; calibrationImages: number };
  config: { attack: DetectorAttackName; iterations: number; eps: number; seed: number; falsePositiveRate: number; noise: NoiseDraws; featureLayer: string; featureWeight: number };
  candidates: { name: CandidateName; description: string; passes: { f: number; s: number } }[];
  /** per candidate: the clean test images' scores, in selection order */
  cleanScores: Record<CandidateName, number[]>;
  /** the KL threshold recomputed here, which must match the manifest's when the calibration data is the same */
  klThresholdCheck: { recomputed: number; manifest: number };
  settings: DetectorSettingResult[];
  run: { startedAt: string; seconds: number; scoringSeconds: { singlePass: number; noiseDraws: number }; provider: ProviderChoice };
}

export const DETECTOR_DEFAULTS = { limit: 500, eps: 0.05, attack: 'bim' as DetectorAttackName, iterations: 10, sigma: 0.05, draws: 8, falsePositiveRate: 0.05, featureWeight: 1 };

function makeAttack(name: DetectorAttackName, iterations: number): Attack {
  return name === 'bim' ? bim({ iterations }) : memberAttack('apgd-ce', { ...ENSEMBLE_DEFAULTS, iterations, restarts: 1 });
}

function emptyScores(): Record<CandidateName, number[]> {
  return Object.fromEntries(CANDIDATE_NAMES.map((c) => [c, [] as number[]])) as Record<CandidateName, number[]>;
}

function append(into: Record<CandidateName, number[]>, from: CandidateScores): void {
  for (const c of CANDIDATE_NAMES) into[c].push(...from[c]);
}

async function scoreAll(scorer: CandidateScorer, ds: Dataset, rows: readonly number[], keyOf: (row: number) => string, batchSize: number, progress: Progress, timing: { plain: number; noise: number }) {
  const scores = emptyScores();
  try {
    for (let start = 0; start < rows.length; start += batchSize) {
      const ids = rows.slice(start, start + batchSize);
      const b = await ds.get([...ids]);
      append(scores, (await scorer.score(b.images, ids.map(keyOf), timing)).scores);
      progress.tick(ids.length);
    }
  } finally {
    // A bar left running keeps its timer, and with it the process, alive after the command is done.
    progress.stop();
  }
  return scores;
}

export async function runDetectorComparison(o: DetectorOptions): Promise<DetectorResults> {
  const started = Date.now();
  const eps = o.eps;
  if (!(eps > 0 && eps <= 1)) throw new UserError(`--eps must be in (0, 1], got ${eps}`);
  const iterations = o.iterations ?? DETECTOR_DEFAULTS.iterations;
  const noise: NoiseDraws = { sigma: o.noise?.sigma ?? DETECTOR_DEFAULTS.sigma, draws: o.noise?.draws ?? DETECTOR_DEFAULTS.draws };
  const fpr = o.falsePositiveRate ?? DETECTOR_DEFAULTS.falsePositiveRate;
  const batchSize = o.batchSize ?? 100;
  const featureWeight = o.featureWeight ?? DETECTOR_DEFAULTS.featureWeight;
  if (!(featureWeight >= 0 && Number.isFinite(featureWeight))) throw new UserError(`--feature-weight must be a number ≥ 0, got ${o.featureWeight}`);
  const models = await loadEvalModels(o.models, ['f', 'fs']);
  const m = models.manifest;
  const f = models.graphs.f!;
  // Fails before any attack runs if f has no layer to read the features from.
  const featureLayer = penultimateValue(f);
  const geometry = { channels: m.input.channels, height: m.input.height, width: m.input.width };
  const test = await openData(o.data, { split: 'test', labelled: true, geometry });
  const train = await openData(o.data, { split: 'train', labelled: false, geometry });
  const holdoutSize = o.holdout ?? Math.min(5000, Math.floor(train.dataset.size / 10));
  const holdout = holdoutSplit(train.dataset, holdoutSize);
  const rows = selectRows(test.dataset.size, o.limit, o.seed);
  const k = models.numClasses;
  const per = models.shape.reduce((a, d) => a * d, 1);
  const session = { provider: o.provider ?? 'auto', intraOpThreads: o.threads ?? 0 };
  const attack = makeAttack(o.attack, iterations);
  const show = (label: string, total: number): Progress => (o.progress === false ? silentProgress : progressBar(label, total, 'img'));

  const scorer = await CandidateScorer.open(f, models.s2snet!, models.shape, { noise, seed: o.seed, session });
  const featureScore = await FeatureMseScore.open(f, models.s2snet!, models.shape, session);
  const oracles = new Map<ModelKey, OnnxGradientOracle>();
  const oracle = (key: ModelKey) => {
    if (!oracles.has(key)) oracles.set(key, OnnxGradientOracle.fromForward(key, models.graphs[key]!, session));
    return oracles.get(key)!;
  };
  let featureThreshold = Number.NaN;
  const oracleFor = (s: DetectorSetting): GradientOracle =>
    s.name === 'undefended' ? oracle('f') : s.name === 'detector-aware' ? new JointOracle(oracle('fs'), oracle('f')) : new PenalisedOracle(oracle('fs'), featureScore, featureThreshold, featureWeight);
  const timing = { plain: 0, noise: 0 };
  try {
    const calibRows = Array.from({ length: holdout.holdout.size }, (_, i) => i);
    const calibration = await scoreAll(scorer, holdout.holdout, calibRows, (i) => `holdout:${holdout.holdoutStart + i}`, batchSize, show('calibration', calibRows.length), timing);
    // the feature-aware attacker knows the threshold the comparison will set (scoreRates sets it the same way)
    featureThreshold = thresholdAt(calibration['feature-mse'], fpr);

    const clean = emptyScores();
    const cleanOk = new Map<ModelKey, number[]>([['f', []], ['fs', []]]);
    const adversarial = DETECTOR_SETTINGS.map(() => ({ scores: emptyScores(), success: [] as number[] }));
    const progress = show(`${o.attack} ε=${eps}`, rows.length * DETECTOR_SETTINGS.length);
    try {
      for (let start = 0; start < rows.length; start += batchSize) {
        const ids = rows.slice(start, start + batchSize);
        const batch = await test.dataset.get(ids);
        if (!batch.labels) throw new UserError('the test data has no labels');
        const y = Int32Array.from(batch.labels, (v) => Number(v));
        const c = await scorer.score(batch.images, ids.map((id) => `test:${id}`), timing);
        append(clean, c.scores);
        const judgedOk = async (key: ModelKey, x: Float32Array) => {
          const logits = await oracle(key).logits(x);
          return ids.map((_, i) => (argmax(logits, k, i) === y[i] ? 1 : 0));
        };
        const okNow = new Map<ModelKey, number[]>();
        for (const key of ['f', 'fs'] as ModelKey[]) {
          okNow.set(key, await judgedOk(key, batch.images));
          cleanOk.get(key)!.push(...okNow.get(key)!);
        }
        for (const [j, s] of DETECTOR_SETTINGS.entries()) {
          const adv = await attack.run(oracleFor(s), { x: batch.images, labels: y, ids }, { eps, targeted: false, seed: streamSeed(o.seed, 'detectors', o.attack, s.name, eps) });
          if (adv.length !== ids.length * per) throw new Error(`attack returned ${adv.length} values for ${ids.length} images`);
          // The example's noise stream is its clean image's: the two differ only by the perturbation.
          append(adversarial[j].scores, (await scorer.score(adv, ids.map((id) => `test:${id}`), timing)).scores);
          const fooled = await judgedOk(s.target, adv);
          const ok = okNow.get(s.target)!;
          adversarial[j].success.push(...ok.map((v, i) => (v === 1 && fooled[i] === 0 ? 1 : 0)));
          progress.tick(ids.length);
        }
      }
    } finally {
      progress.stop();
    }

    const settings = DETECTOR_SETTINGS.map((s, j): DetectorSettingResult => {
      const attacked = cleanOk.get(s.target)!;
      const scores = Object.fromEntries(
        CANDIDATE_NAMES.map((c) => [c, scoreRates({ calibration: calibration[c], falsePositiveRate: fpr, clean: clean[c], adversarial: adversarial[j].scores[c], attacked, success: adversarial[j].success })]),
      ) as Record<CandidateName, ScoreRates>;
      const versusKl = Object.fromEntries(
        CANDIDATE_NAMES.map((c) => {
          const d = compareDetections(scores[c], scores.kl);
          return [c, { onlyCandidate: d.onlyA, onlyKl: d.onlyB, pValue: d.pValue }];
        }),
      ) as DetectorSettingResult['versusKl'];
      return {
        setting: s.name,
        description: s.description,
        attacked: attacked.reduce((a, b) => a + b, 0),
        successful: adversarial[j].success.reduce((a, b) => a + b, 0),
        scores,
        versusKl,
        adversarialScores: adversarial[j].scores,
      };
    });
    const descriptions = candidateDescriptions(noise);
    const passes = candidatePasses(noise);
    const seconds = (Date.now() - started) / 1000;
    return {
      schema: 's2s-detectors',
      version: 1,
      modelSet: { dir: o.models, name: m.name, version: m.version, manifestThreshold: m.detection.threshold },
      data: { test: test.description, selected: rows.length, rows, calibration: `the last ${holdoutSize} images of ${train.description}`, calibrationImages: holdoutSize },
      config: { attack: o.attack, iterations, eps, seed: o.seed, falsePositiveRate: fpr, noise, featureLayer, featureWeight },
      candidates: CANDIDATE_NAMES.map((name) => ({ name, description: descriptions[name], passes: passes[name] })),
      cleanScores: clean,
      klThresholdCheck: { recomputed: settings[0].scores.kl.threshold, manifest: m.detection.threshold },
      settings,
      run: { startedAt: new Date(started).toISOString(), seconds, scoringSeconds: { singlePass: timing.plain, noiseDraws: timing.noise }, provider: session.provider },
    };
  } finally {
    await scorer.release();
    await featureScore.release();
    for (const or of oracles.values()) await or.release();
  }
}
