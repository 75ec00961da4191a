import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors';
import { SCORE_EDGES, aucOfHistograms } from './detection';
import { Counts, Metrics, addCounts, deriveMetrics, emptyCounts } from './metrics';
import { ModelKey, SettingName, Source } from './settings';

/**
 * OUT/results.json of `s2s eval` (docs/results-schema.md describes every
 * field). Everything but `run` is a pure function of the configuration and
 * the images covered, so two runs that cover the same images — in one piece
 * or as merged shards — produce the same document apart from `run`.
 */
export const RESULTS_SCHEMA = 's2s-eval-results';
export const RESULTS_VERSION = 1;

export interface ModelSetInfo {
  name: string;
  version: string;
  /** sha256 of every file of the set, by manifest key */
  files: Record<string, string>;
  labels: string[];
  /** [C, H, W] */
  shape: number[];
}

export interface DataInfo {
  /** what was read (Fashion-MNIST test split, an image folder …) */
  source: string;
  /** images in the source */
  size: number;
  /** images selected for the evaluation (all, or --limit of them drawn with --seed) */
  selected: number;
  limit: number | null;
}

export interface EvalConfig {
  attacks: string[];
  settings: SettingName[];
  eps: number[];
  /** 'none' first, then KIND:SIGMA */
  noise: string[];
  targeted: boolean;
  seed: number;
  /** resolved parameters of every attack (defaults filled in) */
  attackParams: Record<string, Record<string, number | string>>;
  eotSamples: number;
  /** attack id → number of selected images it was run on (N evenly spread over the selection, selection.ts), when limited */
  attackLimits: Record<string, number>;
  /** the ε the gallery shows */
  galleryEps: number | null;
  gallerySize: number;
  detection: { detector: string; threshold: number } | null;
}

export interface CleanRecord {
  model: ModelKey;
  noise: string;
  n: number;
  correct: number;
  accuracy: number | null;
}

export interface CleanDetectionRecord {
  noise: string;
  n: number;
  /** clean images flagged at the threshold (false positives) */
  flagged: number;
  falsePositiveRate: number | null;
  scoreHistogram: number[];
}

export interface Entry {
  attack: string;
  setting: SettingName;
  source: Source;
  target: ModelKey;
  eps: number;
  noise: string;
  counts: Counts;
  metrics: Metrics;
  /** area under the detection ROC against the clean images of the same noise */
  detectionAuc: number | null;
}

export interface GalleryImage {
  id: number;
  label: number;
  /** 8-bit pixels, CHW, base64 */
  pixels: string;
}

export interface GalleryItem {
  id: number;
  attack: string;
  setting: SettingName;
  eps: number;
  /** the adversarial image the judged model saw before noise (8-bit CHW, base64) */
  adversarial: string;
  /** what s or AE made of it, for settings judged through one */
  reconstruction: string | null;
  cleanPrediction: number;
  adversarialPrediction: number;
}

export interface ShardRun {
  index: number;
  of: number;
  images: number;
  seconds: number;
}

export interface EvalResults {
  schema: typeof RESULTS_SCHEMA;
  version: typeof RESULTS_VERSION;
  modelSet: ModelSetInfo;
  data: DataInfo;
  config: EvalConfig;
  coverage: { evaluated: number; complete: boolean };
  clean: CleanRecord[];
  detection: { threshold: number; edges: number[]; clean: CleanDetectionRecord[] } | null;
  entries: Entry[];
  gallery: { shape: number[]; images: GalleryImage[]; items: GalleryItem[] };
  /** how this document was produced; the only part that differs between equivalent runs */
  run: { tool: string; startedAt: string; seconds: number; imagesPerSecond: number; batchSize: number; provider: string; shards: ShardRun[] };
}

/** The entry of one attack × setting × ε × noise, if the document has it. */
export function findEntry(r: EvalResults, key: { attack: string; setting: string; eps: number; noise: string }): Entry | undefined {
  return r.entries.find((e) => e.attack === key.attack && e.setting === key.setting && e.eps === key.eps && e.noise === key.noise);
}

export function entryKey(e: { attack: string; setting: string; eps: number; noise: string }): string {
  return `${e.attack}|${e.setting}|${e.eps}|${e.noise}`;
}

/** Entries in the configuration's order: attack, then setting, then noise, then ε. */
export function sortEntries(config: EvalConfig, entries: Entry[]): Entry[] {
  const rank = (list: readonly (string | number)[], v: string | number) => {
    const i = list.indexOf(v);
    return i < 0 ? list.length : i;
  };
  return [...entries].sort(
    (a, b) =>
      rank(config.attacks, a.attack) - rank(config.attacks, b.attack) ||
      rank(config.settings, a.setting) - rank(config.settings, b.setting) ||
      rank(config.noise, a.noise) - rank(config.noise, b.noise) ||
      rank(config.eps, a.eps) - rank(config.eps, b.eps),
  );
}

/** Recomputes every derived field from the counts. */
export function finalize(r: EvalResults): EvalResults {
  const detector = r.detection !== null;
  for (const c of r.clean) c.accuracy = c.n > 0 ? c.correct / c.n : null;
  const cleanHist = new Map<string, number[]>();
  for (const d of r.detection?.clean ?? []) {
    d.falsePositiveRate = d.n > 0 ? d.flagged / d.n : null;
    cleanHist.set(d.noise, d.scoreHistogram);
  }
  for (const e of r.entries) {
    e.metrics = deriveMetrics(e.counts, { targeted: r.config.targeted, detector });
    e.detectionAuc = detector ? aucOf(cleanHist.get(e.noise), e.counts.scoreHistogram) : null;
  }
  r.entries = sortEntries(r.config, r.entries);
  r.clean.sort((a, b) => a.model.localeCompare(b.model) || r.config.noise.indexOf(a.noise) - r.config.noise.indexOf(b.noise));
  r.detection?.clean.sort((a, b) => r.config.noise.indexOf(a.noise) - r.config.noise.indexOf(b.noise));
  r.gallery.images.sort((a, b) => a.id - b.id);
  r.gallery.items.sort(
    (a, b) =>
      a.id - b.id ||
      r.config.attacks.indexOf(a.attack) - r.config.attacks.indexOf(b.attack) ||
      r.config.settings.indexOf(a.setting) - r.config.settings.indexOf(b.setting),
  );
  return r;
}

function aucOf(clean: number[] | undefined, adv: number[]): number | null {
  return clean ? aucOfHistograms(clean, adv) : null;
}

/** Pretty JSON with arrays of numbers (or null, where a value is missing) on one line: histograms and per-image scores would otherwise take a line each. */
export function formatJson(v: unknown): string {
  return JSON.stringify(v, null, 1).replace(/\[(?:[-0-9.eE+,\s]|null)*\]/g, (m) => m.replace(/\s+/g, '')) + '\n';
}

export function readResults(path: string): EvalResults {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const r = json as EvalResults;
  if (r?.schema !== RESULTS_SCHEMA) throw new UserError(`${path} is not an s2s eval results file (schema '${String(r?.schema)}')`);
  if (r.version !== RESULTS_VERSION) throw new UserError(`${path} has results version ${r.version}; this tool reads version ${RESULTS_VERSION}`);
  return r;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Combines shard results into one. Shards must come from the same model
 * files, data selection and configuration, and cover disjoint slices; the
 * result says whether every selected image is now covered.
 */
export function mergeResults(parts: EvalResults[], sources: string[] = parts.map((_, i) => `#${i + 1}`)): EvalResults {
  if (parts.length === 0) throw new UserError('merge: no results given');
  const first = parts[0];
  const seen = new Map<string, string>();
  parts.forEach((p, i) => {
    for (const key of ['modelSet', 'data', 'config'] as const) {
      if (!same(p[key], first[key])) throw new UserError(`merge: ${sources[i]} has a different ${key} from ${sources[0]}; only shards of one evaluation can be merged`);
    }
    for (const s of p.run.shards) {
      const id = `${s.index}/${s.of}`;
      if (seen.has(id)) throw new UserError(`merge: shard ${id} appears in both ${seen.get(id)} and ${sources[i]}`);
      seen.set(id, sources[i]);
    }
  });
  const ofs = new Set(parts.flatMap((p) => p.run.shards.map((s) => s.of)));
  if (ofs.size > 1) throw new UserError(`merge: shards of different splits (${[...ofs].map((n) => `/${n}`).join(', ')}) cannot be combined`);

  const clean = new Map<string, CleanRecord>();
  const cleanDet = new Map<string, CleanDetectionRecord>();
  const entries = new Map<string, Entry>();
  const images = new Map<number, GalleryImage>();
  const items = new Map<string, GalleryItem>();
  let evaluated = 0;
  for (const p of parts) {
    evaluated += p.coverage.evaluated;
    for (const c of p.clean) {
      const k = `${c.model}|${c.noise}`;
      const t = clean.get(k) ?? { ...c, n: 0, correct: 0 };
      t.n += c.n;
      t.correct += c.correct;
      clean.set(k, t);
    }
    for (const d of p.detection?.clean ?? []) {
      const t = cleanDet.get(d.noise) ?? { ...d, n: 0, flagged: 0, scoreHistogram: new Array(d.scoreHistogram.length).fill(0) };
      t.n += d.n;
      t.flagged += d.flagged;
      d.scoreHistogram.forEach((v, i) => (t.scoreHistogram[i] += v));
      cleanDet.set(d.noise, t);
    }
    for (const e of p.entries) {
      const k = entryKey(e);
      const t = entries.get(k) ?? { ...e, counts: emptyCounts() };
      addCounts(t.counts, e.counts);
      entries.set(k, t);
    }
    for (const g of p.gallery.images) images.set(g.id, g);
    for (const g of p.gallery.items) items.set(`${g.id}|${g.attack}|${g.setting}|${g.eps}`, g);
  }
  const merged: EvalResults = {
    ...first,
    coverage: { evaluated, complete: evaluated === first.data.selected },
    clean: [...clean.values()],
    detection: first.detection ? { ...first.detection, edges: [...SCORE_EDGES], clean: [...cleanDet.values()] } : null,
    entries: [...entries.values()],
    gallery: { shape: first.gallery.shape, images: [...images.values()], items: [...items.values()] },
    run: {
      ...first.run,
      seconds: parts.reduce((a, p) => a + p.run.seconds, 0),
      imagesPerSecond: 0,
      shards: parts.flatMap((p) => p.run.shards).sort((a, b) => a.index - b.index),
    },
  };
  merged.run.imagesPerSecond = merged.run.seconds > 0 ? evaluated / merged.run.seconds : 0;
  return finalize(merged);
}
