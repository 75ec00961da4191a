import { AttackParams } from '../attacks/registry';
import { EotOracle } from '../attacks/eot';
import { JointOracle } from '../attacks/joint';
import { NoiseSpec, addNoise, noiseId } from '../attacks/noise';
import { GradientOracle, OnnxGradientOracle } from '../attacks/oracle';
import { argmax } from '../attacks/objective';
import { streamRng, streamSeed } from '../attacks/seeding';
import { openData } from '../pipeline/data';
import { Progress, progressBar, silentProgress } from '../pipeline/progress';
import { klScores } from '../pipeline/scores';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { SCORE_EDGES, binOf, emptyHistogram, flagged } from './detection';
import { Counts, deriveMetrics, emptyCounts, perturbationNorms, toFixed } from './metrics';
import { EvalModels, ForwardSessions, loadEvalModels } from './models';
import { AttackPlan, parseAttacks, resolvedParams } from './plan';
import { CleanDetectionRecord, CleanRecord, Entry, EvalResults, GalleryImage, GalleryItem, RESULTS_SCHEMA, RESULTS_VERSION, entryKey, finalize } from './results';
import { Shard, WHOLE, selectRows, shardSlice, spreadSubset } from './selection';
import { ModelKey, Setting, Source, modelsNeeded } from './settings';

/**
 * `s2s eval`: every attack × setting × ε × noise on one shard of the
 * selected images. The attack is crafted once per gradient source and judged
 * by every setting that shares that source (undefended and white-box′ both
 * attack f; white-box and gray-box both attack f ∘ s), so the same images
 * are never attacked twice. All randomness is drawn per image (seeding.ts):
 * the document is the same for any batch size and any shard split.
 */
export interface EvalOptions {
  models: string;
  /** --data: Fashion-MNIST folder or image folder; default the Fashion-MNIST location */
  data?: string;
  attacks: string;
  settings: Setting[];
  eps: number[];
  noise: NoiseSpec[];
  limit?: number;
  seed: number;
  shard?: Shard;
  batchSize?: number;
  targeted?: boolean;
  attackParams?: AttackParams;
  eotSamples?: number;
  galleryEps?: number;
  gallerySize?: number;
  /** attack id → evaluate that attack on N of the selected images only, evenly spread (CW is costly) */
  attackLimits?: Record<string, number>;
  provider?: ProviderChoice;
  threads?: number;
  progress?: boolean;
}

const DEFAULT_GALLERY_EPS = 0.05;

function toBase64Pixels(x: Float32Array, offset: number, size: number): string {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = Math.max(0, Math.min(255, Math.round(x[offset + i] * 255)));
  return b.toString('base64');
}

export async function runEvaluation(o: EvalOptions): Promise<EvalResults> {
  const started = Date.now();
  const shard = o.shard ?? WHOLE;
  const batchSize = o.batchSize ?? 64;
  const targeted = o.targeted ?? false;
  const eotSamples = o.eotSamples ?? 8;
  const gallerySize = o.gallerySize ?? 4;
  const eps = [...o.eps];
  if (eps.length === 0 || eps.some((e) => !(e > 0 && e <= 1))) throw new UserError(`--eps values must be in (0, 1], got ${eps.join(', ')}`);
  const plans = parseAttacks(o.attacks, o.attackParams ?? {});
  if (plans.some((p) => p.eot) && o.noise.length === 0) throw new UserError('+eot attacks average over noise draws: give --noise KIND:SIGMA');
  const galleryEps = o.galleryEps ?? (eps.includes(DEFAULT_GALLERY_EPS) ? DEFAULT_GALLERY_EPS : Math.max(...eps));

  const models = await loadEvalModels(o.models, modelsNeeded(o.settings));
  const m = models.manifest;
  const data = await openData(o.data, { split: 'test', labelled: true, geometry: { channels: m.input.channels, height: m.input.height, width: m.input.width } });
  const ds = data.dataset;
  if (ds.shape.join() !== models.shape.join()) throw new UserError(`data images are [${ds.shape}] but the models take [${models.shape}]`);
  if (data.labels && data.labels.length > models.numClasses) throw new UserError(`data has ${data.labels.length} classes but the classifier only ${models.numClasses}`);

  const rows = selectRows(ds.size, o.limit, o.seed);
  const mine = shardSlice(rows, shard);
  const galleryIds = new Set(rows.slice(0, gallerySize));
  const noises: (NoiseSpec | null)[] = [null, ...o.noise];
  const noiseNames = noises.map(noiseId);
  const threshold = models.graphs.fs ? m.detection.threshold : null;
  const sessionOptions = { provider: o.provider ?? 'auto', intraOpThreads: o.threads ?? 0 };
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
  const oracleFor = (source: Source): GradientOracle => (source === 'f+fs' ? new JointOracle(modelOracle('fs'), modelOracle('f')) : modelOracle(source));
  const sources = [...new Set(o.settings.map((s) => s.source))];
  const targets = [...new Set(o.settings.map((s) => s.target))];
  const attackRows = new Map<string, Set<number>>();
  for (const [id, limit] of Object.entries(o.attackLimits ?? {})) {
    if (!plans.some((p) => p.id === id)) throw new UserError(`--attack-limit names '${id}', which is not among --attacks (${plans.map((p) => p.id).join(', ')})`);
    if (!(Number.isInteger(limit) && limit >= 1)) throw new UserError(`--attack-limit ${id}=${limit}: the limit must be a positive integer`);
    attackRows.set(id, new Set(spreadSubset(rows, limit)));
  }
  const imagesFor = (p: AttackPlan) => (attackRows.has(p.id) ? mine.filter((id) => attackRows.get(p.id)!.has(id)).length : mine.length);
  const work = plans.reduce((a, p) => a + imagesFor(p) * sources.length * eps.length * (p.eot ? o.noise.length : 1), 0);
  const progress: Progress = o.progress === false ? silentProgress : progressBar(`eval shard ${shard.index}/${shard.count}`, work, 'img');

  const clean = new Map<string, CleanRecord>();
  const cleanDet = new Map<string, CleanDetectionRecord>();
  const entries = new Map<string, Entry>();
  const galleryImages: GalleryImage[] = [];
  const galleryItems: GalleryItem[] = [];
  const per = models.shape.reduce((a, d) => a * d, 1);
  const k = models.numClasses;

  /** clip(x + n) with the draw seeded by (image, purpose) */
  const noisy = (x: Float32Array, ids: readonly number[], spec: NoiseSpec | null, purpose: string) => {
    if (!spec) return x;
    const out = new Float32Array(x.length);
    ids.forEach((id, i) => addNoise(x, i * per, per, spec, streamRng(o.seed, 'eval-noise', noiseId(spec), purpose, id), out, i * per));
    return out;
  };
  /** KL(f(x) ‖ f(s(input))) from f(x)'s logits, which do not depend on the noise draw in `input`: callers compute them once */
  const scores = async (fx: Float32Array, input: Float32Array, fsLogits?: Float32Array) => klScores(fx, fsLogits ?? (await forward.run('fs', input)).logits, k);

  try {
    for (let start = 0; start < mine.length; start += batchSize) {
      const ids = mine.slice(start, start + batchSize);
      const n = ids.length;
      const batch = await ds.get(ids);
      if (!batch.labels) throw new UserError('the evaluation data has no labels');
      const x = batch.images;
      const y = Int32Array.from(batch.labels, (v) => Number(v));
      const goal = targeted ? targetLabels(y, ids, k, o.seed) : y;

      // Clean accuracy of every judged model under every noise, and the detector on clean images.
      const cleanOk = new Map<string, Uint8Array>();
      const cleanPred = new Map<ModelKey, Int32Array>();
      for (const t of targets) {
        for (const spec of noises) {
          const logits = (await forward.run(t, noisy(x, ids, spec, `clean:${t}`))).logits;
          const ok = new Uint8Array(n);
          for (let i = 0; i < n; i++) ok[i] = argmax(logits, k, i) === y[i] ? 1 : 0;
          if (!spec) cleanPred.set(t, Int32Array.from({ length: n }, (_, i) => argmax(logits, k, i)));
          cleanOk.set(`${t}|${noiseId(spec)}`, ok);
          const rec = clean.get(`${t}|${noiseId(spec)}`) ?? { model: t, noise: noiseId(spec), n: 0, correct: 0, accuracy: null };
          rec.n += n;
          rec.correct += ok.reduce((a, b) => a + b, 0);
          clean.set(`${t}|${noiseId(spec)}`, rec);
        }
      }
      if (threshold !== null) {
        const fx = (await forward.run('f', x)).logits;
        for (const spec of noises) {
          const s = await scores(fx, noisy(x, ids, spec, 'clean:detector'));
          const rec = cleanDet.get(noiseId(spec)) ?? { noise: noiseId(spec), n: 0, flagged: 0, falsePositiveRate: null, scoreHistogram: emptyHistogram() };
          rec.n += n;
          s.forEach((v) => {
            rec.scoreHistogram[binOf(v)]++;
            if (flagged(v, threshold)) rec.flagged++;
          });
          cleanDet.set(noiseId(spec), rec);
        }
      }
      ids.forEach((id, i) => {
        if (galleryIds.has(id)) galleryImages.push({ id, label: y[i], pixels: toBase64Pixels(x, i * per, per) });
      });

      const full: BatchView = { ids, x, y, goal, n, cleanOk, cleanPred };
      for (const plan of plans) {
        // --attack-limit: this attack sees only its N evenly spread images (same ones in every shard split).
        const allowed = attackRows.get(plan.id);
        const b = allowed ? restrict(full, ids.flatMap((id, i) => (allowed.has(id) ? [i] : [])), per) : full;
        if (b.n === 0) continue;
        for (const source of sources) {
          for (const craftNoise of plan.eot ? o.noise : [null]) {
            const base = oracleFor(source);
            const oracle: GradientOracle = craftNoise ? new EotOracle(base, craftNoise, eotSamples, streamSeed(o.seed, 'eot', plan.id, source)) : base;
            for (const e of eps) {
              const tag = `${plan.id}:${source}:${e}:${noiseId(craftNoise)}`;
              const adv = await plan.attack.run(oracle, { x: b.x, labels: b.goal, ids: b.ids }, { eps: e, targeted, seed: streamSeed(o.seed, tag) });
              const norms = b.ids.map((_, i) => perturbationNorms(adv, b.x, i * per, per));
              // f(adv) without noise: the detector's reference for every noise spec
              const fAdv = threshold !== null ? (await forward.run('f', adv)).logits : null;
              for (const spec of plan.eot ? [craftNoise] : noises) {
                const input = noisy(adv, b.ids, spec, tag);
                const judged = new Map<ModelKey, Float32Array>();
                const judge = async (t: ModelKey) => {
                  let l = judged.get(t);
                  if (!l) {
                    l = (await forward.run(t, input)).logits;
                    judged.set(t, l);
                  }
                  return l;
                };
                if (!spec && fAdv) judged.set('f', fAdv);
                const sc = fAdv ? await scores(fAdv, input, await judge('fs')) : null;
                for (const setting of o.settings.filter((s) => s.source === source)) {
                  const logits = await judge(setting.target);
                  const ok = b.cleanOk.get(`${setting.target}|${noiseId(spec)}`)!;
                  const key = entryKey({ attack: plan.id, setting: setting.name, eps: e, noise: noiseId(spec) });
                  const entry =
                    entries.get(key) ??
                    ({ attack: plan.id, setting: setting.name, source, target: setting.target, eps: e, noise: noiseId(spec), counts: emptyCounts(), metrics: deriveMetrics(emptyCounts(), { targeted, detector: threshold !== null }), detectionAuc: null } satisfies Entry);
                  accumulate(entry.counts, { n: b.n, k, y: b.y, goal: b.goal, targeted, ok, logits, norms, scores: sc, threshold });
                  entries.set(key, entry);
                }
              }
              if (e === galleryEps) await captureGallery(galleryItems, { plan, source, e, ids: b.ids, x: b.x, adv, per, galleryIds, forward, settings: o.settings, cleanPred: b.cleanPred });
              progress.tick(b.n);
            }
          }
        }
      }
    }
  } finally {
    progress.stop();
    await forward.release();
    for (const or of oracles.values()) await or.release();
  }

  const seconds = (Date.now() - started) / 1000;
  return finalize({
    schema: RESULTS_SCHEMA,
    version: RESULTS_VERSION,
    modelSet: modelSetInfo(models),
    data: { source: data.description, size: ds.size, selected: rows.length, limit: o.limit ?? null },
    config: {
      attacks: plans.map((p) => p.id),
      settings: o.settings.map((s) => s.name),
      eps,
      noise: noiseNames,
      targeted,
      seed: o.seed,
      attackParams: resolvedParams(plans, o.attackParams ?? {}),
      eotSamples,
      attackLimits: { ...(o.attackLimits ?? {}) },
      galleryEps,
      gallerySize,
      detection: threshold !== null ? { detector: 'KL(softmax f(x) ‖ softmax f(s(x + noise)))', threshold } : null,
    },
    coverage: { evaluated: mine.length, complete: mine.length === rows.length },
    clean: [...clean.values()],
    detection: threshold !== null ? { threshold, edges: [...SCORE_EDGES], clean: [...cleanDet.values()] } : null,
    entries: [...entries.values()],
    gallery: { shape: [...models.shape], images: galleryImages, items: galleryItems },
    run: {
      tool: 's2s eval',
      startedAt: new Date(started).toISOString(),
      seconds,
      imagesPerSecond: seconds > 0 ? work / seconds : 0,
      batchSize,
      provider: sessionOptions.provider,
      shards: [{ index: shard.index, of: shard.count, images: mine.length, seconds }],
    },
  });
}

/** One batch, or the part of it an attack with --attack-limit sees. */
interface BatchView {
  ids: number[];
  x: Float32Array;
  y: Int32Array;
  goal: Int32Array;
  n: number;
  /** per `${model}|${noise}`: clean image classified correctly */
  cleanOk: Map<string, Uint8Array>;
  /** per judged model: clean prediction without noise */
  cleanPred: Map<ModelKey, Int32Array>;
}

function restrict(b: BatchView, keep: number[], per: number): BatchView {
  if (keep.length === b.n) return b;
  const x = new Float32Array(keep.length * per);
  keep.forEach((i, j) => x.set(b.x.subarray(i * per, (i + 1) * per), j * per));
  const ints = (a: Int32Array) => Int32Array.from(keep, (i) => a[i]);
  return {
    ids: keep.map((i) => b.ids[i]),
    x,
    y: ints(b.y),
    goal: ints(b.goal),
    n: keep.length,
    cleanOk: new Map([...b.cleanOk].map(([k, v]) => [k, Uint8Array.from(keep, (i) => v[i])])),
    cleanPred: new Map([...b.cleanPred].map(([k, v]) => [k, ints(v)])),
  };
}

/** Targeted runs: one target per image, uniform over the other classes, seeded by the image. */
export function targetLabels(y: Int32Array, ids: readonly number[], k: number, seed: number): Int32Array {
  return Int32Array.from(y, (label, i) => {
    const t = streamRng(seed, 'target', ids[i]).int(k - 1);
    return t >= label ? t + 1 : t;
  });
}

function accumulate(
  c: Counts,
  a: {
    n: number;
    k: number;
    y: Int32Array;
    goal: Int32Array;
    targeted: boolean;
    ok: Uint8Array;
    logits: Float32Array;
    norms: { linf: number; l2: number }[];
    scores: Float64Array | null;
    threshold: number | null;
  },
): void {
  c.n += a.n;
  for (let i = 0; i < a.n; i++) {
    const pred = argmax(a.logits, a.k, i);
    const correct = pred === a.y[i];
    c.cleanCorrect += a.ok[i];
    if (correct) c.adversarialCorrect++;
    const fooled = a.ok[i] === 1 && !correct;
    if (fooled) c.truePositivesFooled++;
    if (a.targeted && pred === a.goal[i]) c.targetHits++;
    c.linfSum += toFixed(a.norms[i].linf);
    c.l2Sum += toFixed(a.norms[i].l2);
    if (a.scores && a.threshold !== null) {
      const s = a.scores[i];
      c.scoreHistogram[binOf(s)]++;
      if (flagged(s, a.threshold)) {
        c.detected++;
        if (fooled) c.detectedFooled++;
      }
    }
  }
}

async function captureGallery(
  items: GalleryItem[],
  a: {
    plan: AttackPlan;
    source: Source;
    e: number;
    ids: readonly number[];
    x: Float32Array;
    adv: Float32Array;
    per: number;
    galleryIds: Set<number>;
    forward: ForwardSessions;
    settings: readonly Setting[];
    cleanPred: Map<ModelKey, Int32Array>;
  },
): Promise<void> {
  if (a.plan.eot) return; // the gallery shows the noise-free attacks
  const rows = a.ids.map((id, i) => (a.galleryIds.has(id) ? i : -1)).filter((i) => i >= 0);
  if (rows.length === 0) return;
  const sub = new Float32Array(rows.length * a.per);
  rows.forEach((i, j) => sub.set(a.adv.subarray(i * a.per, (i + 1) * a.per), j * a.per));
  for (const setting of a.settings.filter((s) => s.source === a.source)) {
    const r = await a.forward.run(setting.target, sub, true);
    const k = r.logits.length / rows.length;
    rows.forEach((i, j) => {
      items.push({
        id: a.ids[i],
        attack: a.plan.id,
        setting: setting.name,
        eps: a.e,
        adversarial: toBase64Pixels(sub, j * a.per, a.per),
        reconstruction: r.reconstruction ? toBase64Pixels(r.reconstruction, j * a.per, a.per) : null,
        cleanPrediction: a.cleanPred.get(setting.target)![i],
        adversarialPrediction: argmax(r.logits, k, j),
      });
    });
  }
}

function modelSetInfo(models: EvalModels) {
  const m = models.manifest;
  const files: Record<string, string> = {};
  for (const [key, ref] of Object.entries(m.files)) if (ref) files[key] = ref.sha256;
  return { name: m.name, version: m.version, files, labels: [...m.labels], shape: [...models.shape] };
}
