import { apgd } from '../attacks/apgd';
import { Attack } from '../attacks/attack';
import { BpdaOracle } from '../attacks/bpda';
import { EotOracle } from '../attacks/eot';
import { JointOracle } from '../attacks/joint';
import { PenalisedOracle } from '../attacks/penalised';
import { NoiseSpec, addNoise, noiseId } from '../attacks/noise';
import { argmax } from '../attacks/objective';
import { GradientOracle, OnnxGradientOracle } from '../attacks/oracle';
import { streamRng, streamSeed } from '../attacks/seeding';
import { openData } from '../pipeline/data';
import { Progress, progressBar, silentProgress } from '../pipeline/progress';
import { klScores, thresholdAt } from '../pipeline/scores';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { flagged } from './detection';
import { combinedRows, detectionSummary, ensembleRow, pairedComparisons } from './ensemble-derived';
import { EnsembleDetection, EnsembleDetectionRow, detectionRow, detectorJudges } from './ensemble-detection';
import { FeatureMseScore } from './feature-penalty';
import { ForwardSessions, loadEvalModels } from './models';
import { selectRows } from './selection';
import { ModelKey } from './settings';
import { wilson } from './statistics';

export { ENSEMBLE_COMBINED } from './ensemble-derived';

/**
 * `s2s eval --attacks ensemble`: worst-case robust accuracy in the spirit of
 * AutoAttack (Croce & Hein 2020). Per setting and ε an image counts as
 * robust only if the judged model classifies it correctly clean and after
 * every member of the ensemble; each member runs only on the images that
 * are still robust (what the earlier ones broke costs nothing more), so the
 * members' order changes the cost, never the result.
 *
 * Members: APGD with cross-entropy, APGD with DLR, APGD-T (targeted DLR
 * against the clean image's top-ranked other classes), each against the
 * setting's gradient source. The BPDA settings take f's gradient at s(x)
 * straight through s (attacks/bpda.ts); with a noise layer the judged model
 * sees clip(x' + n) and every gradient is an EOT average over draws.
 *
 * `detector-aware` is the attacker who knows the set's KL detector: the
 * gradient of L(f) + L(f ∘ s) (attacks/joint.ts), and an example counts as
 * a success only where f ∘ s is wrong *and* the detector does not flag it,
 * so APGD keeps searching past examples the detector would catch, and an
 * image whose example is flagged stays in for the next member. Its row's
 * robust count is therefore "robust or detected": the accuracy of an
 * operator who rejects flagged inputs, against the attacker who knows that.
 * `detector-aware-features` attacks the same detector by way of f's
 * features: it ascends L(f ∘ s) − feature-mse / τ (attacks/penalised.ts;
 * φ(x′) and φ(s(x′)) pulled together make f(x′) and f(s(x′)) agree, which
 * is all the KL sees), τ the 95th percentile of the clean selected images'
 * feature-mse (the unit of the penalty), and counts its examples as the
 * detector-aware setting does.
 */
export type EnsembleSettingName = 'undefended' | 'whitebox' | 'whitebox-bpda' | 'graybox' | 'autoencoder' | 'autoencoder-bpda' | 'transfer-ae' | 'detector-aware' | 'detector-aware-features';

/** Where gradients come from: a model, f's gradient passed straight through a purifier, f and f ∘ s together, or f ∘ s less the feature-space error. */
export type EnsembleSource = ModelKey | 'bpda-s' | 'bpda-ae' | 'f+fs' | 'fs-features';

/** The sources of the attackers who know the KL detector: a flagged example is a failed attack. */
const detectorAware = (source: EnsembleSource) => source === 'f+fs' || source === 'fs-features';

/** τ of the feature penalty: the clean selected images' feature-mse at this quantile (the detector's 5 % false positives). */
const FEATURE_PENALTY_QUANTILE_FPR = 0.05;

export interface EnsembleSetting {
  name: EnsembleSettingName;
  source: EnsembleSource;
  target: ModelKey;
  description: string;
}

export const ENSEMBLE_SETTINGS: readonly EnsembleSetting[] = [
  { name: 'undefended', source: 'f', target: 'f', description: 'gradients of f, judged on f' },
  { name: 'whitebox', source: 'fs', target: 'fs', description: 'gradients of f ∘ s through the S2SNet, judged on f ∘ s' },
  { name: 'whitebox-bpda', source: 'bpda-s', target: 'fs', description: "white-box′ by BPDA: f's gradient at s(x) passed straight through s, judged on f ∘ s" },
  { name: 'graybox', source: 'fs', target: 'f', description: 'gradients of f ∘ s, judged on f (defence by removal)' },
  { name: 'autoencoder', source: 'fae', target: 'fae', description: 'gradients of f ∘ AE, judged on f ∘ AE (plain-AE baseline)' },
  { name: 'autoencoder-bpda', source: 'bpda-ae', target: 'fae', description: "f's gradient at AE(x) passed straight through the AE, judged on f ∘ AE" },
  // A transfer attack: the set's autoencoder as the attacker's surrogate for s. With another S2SNet in that slot it
  // checks that a white-box figure is not a gradient that hides (examples made on a twin should do no better).
  { name: 'transfer-ae', source: 'fae', target: 'fs', description: "gradients of f ∘ AE (the set's autoencoder as a surrogate for s), judged on f ∘ s: a transfer attack" },
  { name: 'detector-aware', source: 'f+fs', target: 'fs', description: 'gradients of L(f) + L(f ∘ s), judged on f ∘ s behind the KL detector: robust means f ∘ s right or the example flagged' },
  {
    name: 'detector-aware-features',
    source: 'fs-features',
    target: 'fs',
    description: "gradients of L(f ∘ s) − feature-mse / τ (f's features of x and s(x) pulled together), judged on f ∘ s behind the KL detector: robust means f ∘ s right or the example flagged",
  },
];

export const DEFAULT_ENSEMBLE_SETTINGS: readonly EnsembleSettingName[] = ['undefended', 'whitebox', 'whitebox-bpda', 'graybox', 'autoencoder', 'autoencoder-bpda'];

export type MemberName = 'apgd-ce' | 'apgd-dlr' | 'apgd-t';
export const MEMBER_NAMES: readonly MemberName[] = ['apgd-ce', 'apgd-dlr', 'apgd-t'];

export interface EnsembleParams {
  iterations: number;
  restarts: number;
  /** APGD-T's number of target classes */
  targetClasses: number;
}

export const ENSEMBLE_DEFAULTS: EnsembleParams = { iterations: 100, restarts: 1, targetClasses: 3 };

export function memberAttack(name: MemberName, p: EnsembleParams): Attack {
  switch (name) {
    case 'apgd-ce':
      return apgd({ iterations: p.iterations, restarts: p.restarts, loss: 'cross-entropy' });
    case 'apgd-dlr':
      return apgd({ iterations: p.iterations, restarts: p.restarts, loss: 'dlr' });
    case 'apgd-t':
      return apgd({ iterations: p.iterations, restarts: 1, targetClasses: p.targetClasses });
  }
}

export function parseEnsembleSettings(list: string): EnsembleSetting[] {
  const names = new Set(list.split(',').map((s) => s.trim()).filter(Boolean));
  if (names.size === 0) throw new UserError('no ensemble settings given');
  for (const n of names) {
    if (!ENSEMBLE_SETTINGS.some((s) => s.name === n)) throw new UserError(`unknown ensemble setting '${n}' (known: ${ENSEMBLE_SETTINGS.map((s) => s.name).join(', ')})`);
  }
  return ENSEMBLE_SETTINGS.filter((s) => names.has(s.name));
}

export function parseMembers(list: string): MemberName[] {
  const names = [...new Set(list.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))];
  if (names.length === 0) throw new UserError('no ensemble members given');
  for (const n of names) if (!(MEMBER_NAMES as readonly string[]).includes(n)) throw new UserError(`unknown ensemble member '${n}' (known: ${MEMBER_NAMES.join(', ')})`);
  return names as MemberName[];
}

export interface EnsembleOptions {
  models: string;
  data?: string;
  settings: EnsembleSetting[];
  members: MemberName[];
  params: EnsembleParams;
  eps: number[];
  /** a noise layer in front of every judged model; gradients become EOT averages */
  noise?: NoiseSpec;
  eotSamples?: number;
  limit?: number;
  seed: number;
  batchSize?: number;
  provider?: ProviderChoice;
  threads?: number;
  progress?: boolean;
}

export const ENSEMBLE_SCHEMA = 's2s-ensemble-results';
/** 2 added `detection`; version 1 documents (without it) still read. */
export const ENSEMBLE_VERSION = 2;

export interface MemberRecord {
  member: MemberName;
  /** images this member attacked (those still robust when its turn came) */
  attacked: number;
  /** of those, the ones it broke */
  broken: number;
  /** robust accuracy after this member (and all before it) */
  accuracyAfter: number;
  seconds: number;
}

export interface EnsembleRow {
  setting: string;
  source: string;
  target: ModelKey;
  eps: number;
  n: number;
  cleanCorrect: number;
  robust: number;
  /** worst-case robust accuracy: robust / n */
  accuracy: number;
  /** 95 % Wilson interval of `accuracy` */
  ci: [number, number];
  /** robust accuracy over clean accuracy (the paper's relative accuracy) */
  relative: number | null;
  members: MemberRecord[];
  /** per selected image, in `images.ids` order: '1' robust, '0' not */
  outcomes: string;
}

export interface EnsembleComparison {
  eps: number;
  a: string;
  b: string;
  onlyA: number;
  onlyB: number;
  /** exact two-sided McNemar p */
  p: number;
}

export interface EnsembleResults {
  schema: typeof ENSEMBLE_SCHEMA;
  version: 1 | typeof ENSEMBLE_VERSION;
  modelSet: { name: string; version: string; files: Record<string, string> };
  data: { source: string; size: number; selected: number; limit: number | null };
  config: {
    settings: string[];
    members: MemberName[];
    params: EnsembleParams & { rho: number; alpha: number };
    eps: number[];
    noise: string;
    eotSamples: number | null;
    seed: number;
    /** detector-aware-features only: τ (the clean selected images' feature-mse at `quantile`) and the penalty's weight */
    featurePenalty?: { threshold: number; weight: number; quantile: number };
  };
  images: { ids: number[] };
  clean: { model: ModelKey; n: number; correct: number; accuracy: number; ci: [number, number] }[];
  rows: EnsembleRow[];
  combined: EnsembleRow[];
  /** f ∘ s against f ∘ AE, paired on the same images (when both were run) */
  comparisons: EnsembleComparison[];
  /** the KL detector against the final adversarial examples (ensemble-detection.ts); null when the set has no S2SNet, absent before version 2 */
  detection?: EnsembleDetection | null;
  /** how the document was produced; a merged document sums the runs' cost and keeps each run's record in `parts` */
  run: EnsembleRunRecord & { parts?: EnsemblePartRun[] };
}

export interface EnsembleRunRecord {
  tool: string;
  startedAt: string;
  seconds: number;
  cpuSeconds: number;
  gradientPasses: number;
  batchSize: number;
}

/** One run of a merged document: its ε and settings (absent in documents merged before settings were recorded: then the document's). */
export type EnsemblePartRun = EnsembleRunRecord & { eps: number[]; settings?: string[] };

export async function runEnsemble(o: EnsembleOptions): Promise<EnsembleResults> {
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const batchSize = o.batchSize ?? 64;
  const eotSamples = o.eotSamples ?? 8;
  if (o.members.length === 0) throw new UserError('the ensemble needs at least one member');
  if (o.settings.length === 0) throw new UserError('the ensemble needs at least one setting');
  const needed = new Set<ModelKey>();
  for (const s of o.settings) {
    needed.add(s.target);
    if (s.source === 'bpda-s') needed.add('fs');
    else if (s.source === 'bpda-ae') needed.add('fae');
    else if (detectorAware(s.source)) needed.add('f').add('fs');
    else needed.add(s.source);
  }
  // The detector compares f(x) with f ∘ s on a noise draw of its own; the attacker's refusal rule sees no noise.
  if (o.noise && o.settings.some((s) => detectorAware(s.source))) throw new UserError('the detector-aware ensemble settings run without a noise layer (drop --noise, or the setting)');
  const models = await loadEvalModels(o.models, needed);
  const m = models.manifest;
  const data = await openData(o.data, { split: 'test', labelled: true, geometry: { channels: m.input.channels, height: m.input.height, width: m.input.width } });
  const ds = data.dataset;
  if (ds.shape.join() !== models.shape.join()) throw new UserError(`data images are [${ds.shape}] but the models take [${models.shape}]`);
  const rows = selectRows(ds.size, o.limit, o.seed);
  const per = models.shape.reduce((a, b) => a * b, 1);
  const k = models.numClasses;
  const all = await ds.get(rows);
  if (!all.labels) throw new UserError('the evaluation data has no labels');
  const x = all.images;
  const y = Int32Array.from(all.labels, (v) => Number(v));
  const n = rows.length;

  const sessionOptions = { provider: o.provider ?? 'auto', intraOpThreads: o.threads ?? 0 };
  const threshold = models.graphs.fs ? m.detection.threshold : null;
  const forward = new ForwardSessions(models, sessionOptions);
  const oracles = new Map<ModelKey, OnnxGradientOracle>();
  const modelOracle = (key: ModelKey) => {
    let or = oracles.get(key);
    if (!or) {
      or = OnnxGradientOracle.fromForward(key, models.graphs[key]!, sessionOptions);
      oracles.set(key, or);
    }
    return or;
  };
  const reconstruct = (key: 'fs' | 'fae') => async (u: Float32Array) => {
    const r = await forward.run(key, u, true);
    if (!r.reconstruction) throw new Error(`model '${key}' has no reconstruction output for BPDA`);
    return r.reconstruction;
  };
  const baseOracle = (source: EnsembleSource): GradientOracle => {
    if (source === 'bpda-s') return new BpdaOracle(modelOracle('f'), reconstruct('fs'), 's');
    if (source === 'bpda-ae') return new BpdaOracle(modelOracle('f'), reconstruct('fae'), 'AE');
    if (detectorAware(source)) {
      const t = threshold;
      if (t === null) throw new UserError(`model set ${m.name} has no S2SNet detector: the detector-aware settings need one`);
      const rule = (fsLogits: Float32Array, fLogits: Float32Array) => Uint8Array.from(klScores(fLogits, fsLogits, k), (v) => (flagged(v, t) ? 1 : 0));
      if (source === 'f+fs') return new JointOracle(modelOracle('fs'), modelOracle('f'), rule);
      const penalty = featurePenalty!;
      return new PenalisedOracle(modelOracle('fs'), penalty.score, penalty.threshold, 1, async (u, fsLogits) => rule(fsLogits, await modelOracle('f').logits(u)));
    }
    return modelOracle(source);
  };
  const oracleFor = (source: EnsembleSource, member: MemberName): GradientOracle => {
    const base = baseOracle(source);
    return o.noise ? new EotOracle(base, o.noise, eotSamples, streamSeed(o.seed, 'ensemble-eot', member, source)) : base;
  };
  /** clip(x + n), drawn per (image, purpose) */
  const noisy = (v: Float32Array, ids: readonly number[], purpose: string) => {
    if (!o.noise) return v;
    const out = new Float32Array(v.length);
    ids.forEach((id, i) => addNoise(v, i * per, per, o.noise!, streamRng(o.seed, 'ensemble-noise', purpose, id), out, i * per));
    return out;
  };
  /** v's images (the selected images at `positions`) a batch at a time: the slice, its positions, its offset */
  const batched = async (v: Float32Array, positions: number[], each: (u: Float32Array, idx: number[], offset: number) => Promise<void>) => {
    for (let s = 0; s < positions.length; s += batchSize) {
      const idx = positions.slice(s, s + batchSize);
      await each(v.subarray(s * per, (s + idx.length) * per), idx, s);
    }
  };
  /** 1 where the judged model is right on v's images */
  const judge = async (target: ModelKey, v: Float32Array, positions: number[], purpose: string) => {
    const out = new Uint8Array(positions.length);
    await batched(v, positions, async (u, idx, s) => {
      const z = (await forward.run(target, noisy(u, idx.map((i) => rows[i]), purpose))).logits;
      for (let j = 0; j < idx.length; j++) out[s + j] = argmax(z, k, j) === y[idx[j]] ? 1 : 0;
    });
    return out;
  };
  // The service's detector: f sees the input as received, f ∘ s the noise drawn for `purpose` (the judged model's own draw).
  const detectorScores = async (v: Float32Array, positions: number[], purpose: string) => {
    const out = new Float64Array(positions.length);
    await batched(v, positions, async (u, idx, s) => {
      const fx = (await forward.run('f', u)).logits;
      const fsx = (await forward.run('fs', noisy(u, idx.map((i) => rows[i]), purpose))).logits;
      out.set(klScores(fx, fsx, k), s);
    });
    return out;
  };

  // the feature penalty and its unit τ, from the clean selected images
  let featurePenalty: { score: FeatureMseScore; threshold: number } | undefined;
  if (o.settings.some((s) => s.source === 'fs-features')) {
    const score = await FeatureMseScore.open(models.graphs.f!, models.s2snet!, models.shape, sessionOptions);
    const clean = new Float32Array(n);
    for (let s = 0; s < n; s += batchSize) clean.set(await score.value(x.subarray(s * per, Math.min(n, s + batchSize) * per)), s);
    featurePenalty = { score, threshold: thresholdAt(clean, FEATURE_PENALTY_QUANTILE_FPR) };
  }
  const params = { ...o.params };
  const attacks = new Map(o.members.map((name) => [name, memberAttack(name, params)]));
  const work = o.settings.length * o.eps.length * o.members.length * n;
  const progress: Progress = o.progress === false ? silentProgress : progressBar('ensemble', work, 'img');
  /** adversarial images by member|source|eps|row: white-box and gray-box share a source, so gray-box reuses what white-box made */
  const made = new Map<string, Float32Array>();
  let passes = 0;
  const cleanRecords: EnsembleResults['clean'] = [];
  const resultRows: EnsembleRow[] = [];
  const detects = (s: EnsembleSetting) => threshold !== null && detectorJudges(s.target);
  let cleanScores: Float64Array | null = null;
  const detectionRows: EnsembleDetectionRow[] = [];
  try {
    const cleanOk = new Map<ModelKey, Uint8Array>();
    for (const t of new Set(o.settings.map((s) => s.target))) {
      const ok = await judge(t, x, [...rows.keys()], `clean:${t}`);
      cleanOk.set(t, ok);
      const c = ok.reduce((a, b) => a + b, 0);
      cleanRecords.push({ model: t, n, correct: c, accuracy: c / n, ci: wilson(c, n) });
    }
    // the clean image's noise is the draw f ∘ s was judged on clean
    if (o.settings.some(detects)) cleanScores = await detectorScores(x, [...rows.keys()], 'clean:fs');
    for (const setting of o.settings) {
      for (const eps of o.eps) {
        const robust = Uint8Array.from(cleanOk.get(setting.target)!);
        const members: MemberRecord[] = [];
        const madeKey = (name: MemberName, i: number) => `${name}|${setting.source}|${eps}|${rows[i]}`;
        const gather = (name: MemberName, positions: number[]) => {
          const v = new Float32Array(positions.length * per);
          positions.forEach((i, j) => v.set(made.get(madeKey(name, i))!, j * per));
          return v;
        };
        /** per image, the member whose example is the ensemble's final one: the breaker, or the last for survivors */
        const finalBy: (MemberName | null)[] = new Array(n).fill(null);
        for (const name of o.members) {
          const t0 = Date.now();
          const attack = attacks.get(name)!;
          const todo = [...robust.keys()].filter((i) => robust[i]);
          const key = (i: number) => madeKey(name, i);
          const missing = todo.filter((i) => !made.has(key(i)));
          const oracle = oracleFor(setting.source, name);
          for (let s = 0; s < missing.length; s += batchSize) {
            const idx = missing.slice(s, s + batchSize);
            const bx = new Float32Array(idx.length * per);
            idx.forEach((i, j) => bx.set(x.subarray(i * per, (i + 1) * per), j * per));
            const adv = await attack.run(oracle, { x: bx, labels: Int32Array.from(idx, (i) => y[i]), ids: idx.map((i) => rows[i]) }, { eps, targeted: false, seed: streamSeed(o.seed, 'ensemble', name, setting.source, eps) });
            passes += attack.passes * idx.length * (o.noise ? eotSamples : 1) * (detectorAware(setting.source) ? 2 : 1);
            idx.forEach((i, j) => made.set(key(i), adv.slice(j * per, (j + 1) * per)));
            progress.tick(idx.length);
          }
          progress.tick(n - missing.length);
          todo.forEach((i) => (finalBy[i] = name));
          const ok = await judge(setting.target, gather(name, todo), todo, `${setting.name}:${name}:${eps}`);
          // Against the attacker who knows the detector, a flagged example is a failed attack: the image stays
          // in for the next member, which may find one the detector lets pass.
          if (detectorAware(setting.source)) {
            const sc = await detectorScores(gather(name, todo), todo, `${setting.name}:${name}:${eps}`);
            sc.forEach((v, j) => flagged(v, threshold!) && (ok[j] = 1));
          }
          let broken = 0;
          todo.forEach((i, j) => {
            if (!ok[j]) {
              robust[i] = 0;
              broken++;
            }
          });
          const left = robust.reduce((a, b) => a + b, 0);
          members.push({ member: name, attacked: todo.length, broken, accuracyAfter: left / n, seconds: (Date.now() - t0) / 1000 });
        }
        resultRows.push(ensembleRow(setting.name, setting.source, setting.target, eps, n, cleanOk.get(setting.target)!, robust, members));
        if (detects(setting) && cleanScores) {
          const adversarial: (number | null)[] = new Array(n).fill(null);
          for (const name of o.members) {
            const mine = [...finalBy.keys()].filter((i) => finalBy[i] === name);
            const sc = await detectorScores(gather(name, mine), mine, `${setting.name}:${name}:${eps}`);
            mine.forEach((i, j) => (adversarial[i] = sc[j]));
          }
          detectionRows.push(detectionRow({ setting: setting.name, eps, threshold: threshold!, clean: cleanScores, adversarial, cleanOk: cleanOk.get(setting.target)!, robust }));
        }
      }
    }
  } finally {
    progress.stop();
    await forward.release();
    await featurePenalty?.score.release();
    for (const or of oracles.values()) await or.release();
  }

  const combined = combinedRows(resultRows, cleanRecords, o.eps);
  const comparisons = pairedComparisons(resultRows, combined, o.eps);
  const detection = cleanScores && threshold !== null ? detectionSummary(threshold, Array.from(cleanScores), detectionRows, o.eps) : null;
  const files: Record<string, string> = {};
  for (const [key, ref] of Object.entries(m.files)) if (ref) files[key] = ref.sha256;
  return {
    schema: ENSEMBLE_SCHEMA,
    version: ENSEMBLE_VERSION,
    modelSet: { name: m.name, version: m.version, files },
    data: { source: data.description, size: ds.size, selected: n, limit: o.limit ?? null },
    config: {
      settings: o.settings.map((s) => s.name),
      members: [...o.members],
      params: { ...params, rho: 0.75, alpha: 0.75 },
      eps: [...o.eps],
      noise: noiseId(o.noise ?? null),
      eotSamples: o.noise ? eotSamples : null,
      seed: o.seed,
      ...(featurePenalty ? { featurePenalty: { threshold: featurePenalty.threshold, weight: 1, quantile: 1 - FEATURE_PENALTY_QUANTILE_FPR } } : {}),
    },
    images: { ids: rows },
    clean: cleanRecords,
    rows: resultRows,
    combined,
    comparisons,
    detection,
    run: { tool: 's2s eval --attacks ensemble', startedAt: new Date(started).toISOString(), seconds: (Date.now() - started) / 1000, cpuSeconds: cpuSince(cpu0), gradientPasses: passes, batchSize },
  };
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}
