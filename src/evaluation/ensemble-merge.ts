import { UserError } from '../util/errors';
import { firstDifference } from '../util/first-difference';
import { ENSEMBLE_SETTINGS, ENSEMBLE_VERSION, EnsemblePartRun, EnsembleResults, EnsembleRunRecord } from './ensemble';
import { combinedRows, detectionSummary, pairedComparisons } from './ensemble-derived';
import { EnsembleDetection, detectorJudges } from './ensemble-detection';

/**
 * One ensemble document from runs at different ε, or of different settings,
 * on the same images: a large evaluation runs one process per ε, or per group
 * of settings (same --limit/--seed), and combines them here. Attack seeds
 * depend on the member, the gradient source and ε only, so splitting changes
 * no outcome. The runs must agree on everything but ε, the settings and the
 * cost of the run — model files, data, selection, the rest of the
 * configuration, clean verdicts; no (setting, ε) may be in two of them, and
 * together they must hold every setting at every ε (a ragged table would
 * leave holes in the combined rows and paired tests). Rows are the union;
 * the combined rows, the paired tests and the detector's summary are
 * recomputed from the per-image outcomes by the functions runEnsemble uses,
 * so the merged document is the one a single run with every ε and setting
 * would have written, apart from `run`.
 *
 * Versions: a version 1 document has no detector data. Merged with version 2
 * documents, the result is version 1: the version 2 documents' detection is
 * left out, and `warn` says so in one line.
 */
export interface EnsembleMergeOptions {
  /** names of the documents for messages (their paths); default #1, #2 … */
  sources?: string[];
  /** one line about data left out (default: stderr) */
  warn?: (line: string) => void;
}

/** The model a setting's examples are judged on. */
const targetOf = (setting: string) => ENSEMBLE_SETTINGS.find((x) => x.name === setting)!.target;

/** Everything that must be identical across the runs (and `clean`, model by model: the same images through the same models). */
const SHARED = ['schema', 'modelSet', 'data', 'images'] as const;

/**
 * Float32 kernels may round differently with another batch size, thread
 * count or provider, so the clean detector scores of two runs agree to this
 * relative tolerance rather than to the bit.
 */
const SCORE_TOLERANCE = 1e-4;

export function mergeEnsembleResults(docs: EnsembleResults[], o: EnsembleMergeOptions = {}): EnsembleResults {
  if (docs.length === 0) throw new UserError('merge: no ensemble results given');
  const sources = o.sources ?? docs.map((_, i) => `#${i + 1}`);
  const warn = o.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const first = docs[0];
  const refuse = (i: number, field: string, j = 0) =>
    new UserError(`merge: ${sources[i]} and ${sources[j]} differ in ${field}; only ensemble runs of one selection and configuration can be merged`);

  const configApartFromSplit = (d: EnsembleResults) => ({ ...d.config, eps: undefined, settings: undefined });
  const from = new Map<string, string>();
  const key = (setting: string, e: number) => `${setting} at ε = ${e}`;
  // A run holds the clean verdicts of its settings' judged models, in its settings' order.
  const clean = new Map<string, { record: EnsembleResults['clean'][number]; from: number }>();
  docs.forEach((d, i) => {
    for (const k of SHARED) {
      const diff = firstDifference(d[k], first[k], k);
      if (diff) throw refuse(i, diff);
    }
    for (const record of d.clean) {
      const seen = clean.get(record.model);
      if (!seen) clean.set(record.model, { record, from: i });
      else {
        const diff = firstDifference(record, seen.record, `clean[${record.model}]`);
        if (diff) throw refuse(i, diff, seen.from);
      }
    }
    const diff = firstDifference(configApartFromSplit(d), configApartFromSplit(first), 'config');
    if (diff) throw refuse(i, diff);
    for (const setting of d.config.settings) {
      for (const e of d.config.eps) {
        const k = key(setting, e);
        if (from.has(k)) throw new UserError(`merge: ${k} is in both ${from.get(k)} and ${sources[i]}; each (setting, ε) may come from one run only`);
        from.set(k, sources[i]);
      }
    }
  });

  const eps = [...new Set(docs.flatMap((d) => d.config.eps))].sort((a, b) => a - b);
  // the order a single run writes: ENSEMBLE_SETTINGS's
  const canonical = ENSEMBLE_SETTINGS.map((s) => s.name as string);
  const settingRank = (s: string) => canonical.indexOf(s);
  const settings = [...new Set(docs.flatMap((d) => d.config.settings))].sort((a, b) => settingRank(a) - settingRank(b));
  for (const setting of settings) {
    const missing = eps.find((e) => !from.has(key(setting, e)));
    if (missing !== undefined) {
      const present = eps.find((e) => from.has(key(setting, e)))!;
      throw new UserError(`merge: the runs hold ${key(setting, present)} but not ${key(setting, missing)}; merged runs must hold every setting at every ε`);
    }
  }
  const rows = docs.flatMap((d) => d.rows).sort((a, b) => settingRank(a.setting) - settingRank(b.setting) || a.eps - b.eps);
  const judged = [...new Set(settings.map(targetOf))];
  const cleanRecords = judged.map((model) => clean.get(model)!.record);
  const combined = combinedRows(rows, cleanRecords, eps);
  const merged: EnsembleResults = {
    ...first,
    version: ENSEMBLE_VERSION,
    config: { ...first.config, settings, eps },
    clean: cleanRecords,
    rows,
    combined,
    comparisons: pairedComparisons(rows, combined, eps),
    run: mergedRun(docs, settingRank),
  };
  const v1 = sources.filter((_, i) => docs[i].version === 1);
  if (v1.length > 0) {
    merged.version = 1;
    delete merged.detection;
    const dropped = sources.filter((_, i) => docs[i].version !== 1 && docs[i].detection);
    if (dropped.length > 0) warn(`merge: ${v1.join(', ')} ${v1.length > 1 ? 'are' : 'is'} version 1 (no detector data); the merged document is version 1 and leaves out the detection of ${dropped.join(', ')}`);
    return merged;
  }
  merged.detection = mergedDetection(docs, refuse, eps, settingRank);
  return merged;
}

/** The detector's rows of every run, with the clean-image summary and the combined rows recomputed; null where the runs have none. */
function mergedDetection(
  docs: EnsembleResults[],
  refuse: (i: number, field: string, j?: number) => UserError,
  eps: number[],
  settingRank: (s: string) => number,
): EnsembleDetection | null {
  // A run none of whose settings the detector judges (f ∘ AE only) has no detection to bring.
  const judgedByDetector = (d: EnsembleResults) => d.config.settings.some((s) => detectorJudges(targetOf(s)));
  const holders = docs.map((d, i) => ({ d, i })).filter(({ d }) => judgedByDetector(d));
  if (holders.length === 0) return null;
  const blocks = holders.map(({ d }) => d.detection ?? null);
  const first = blocks[0];
  blocks.forEach((b, j) => {
    const [i, i0] = [holders[j].i, holders[0].i];
    if ((b === null) !== (first === null)) throw refuse(i, 'detection (one has the detector, the other not)', i0);
    if (!b || !first) return;
    if (b.detector !== first.detector) throw refuse(i, 'detection.detector', i0);
    if (b.threshold !== first.threshold) throw refuse(i, 'detection.threshold', i0);
    const bad = firstScoreDifference(b.clean, first.clean);
    if (bad !== null) throw refuse(i, `detection.clean${bad}`, i0);
  });
  if (!first) return null;
  const rows = blocks.flatMap((b) => b!.rows).sort((a, b) => settingRank(a.setting) - settingRank(b.setting) || a.eps - b.eps);
  // JSON writes a NaN score (flagged by the service) as null; read it back as NaN so it is counted as flagged again.
  const clean = first.clean.map((v) => (v === null ? Number.NaN : v));
  return { ...detectionSummary(first.threshold, clean, rows, eps), detector: first.detector };
}

/** null when every score agrees within SCORE_TOLERANCE, else `[i]` of the first that does not. */
function firstScoreDifference(a: readonly (number | null)[], b: readonly (number | null)[]): string | null {
  if (a.length !== b.length) return ` (length ${a.length} vs ${b.length})`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === null || y === null || Number.isNaN(x) || Number.isNaN(y)) {
      if ((x === null || Number.isNaN(x)) !== (y === null || Number.isNaN(y))) return `[${i}]`;
      continue;
    }
    if (Math.abs(x - y) > SCORE_TOLERANCE * Math.max(Math.abs(x), Math.abs(y), 1e-6)) return `[${i}]`;
  }
  return null;
}

/**
 * The cost summed over the runs; each run's own record kept, with its ε and
 * settings (a merged input contributes the records it kept; one merged before
 * settings were recorded had the same settings in every part).
 */
function mergedRun(docs: EnsembleResults[], settingRank: (s: string) => number): EnsembleResults['run'] {
  const parts: EnsemblePartRun[] = docs.flatMap((d) =>
    (d.run.parts ?? [{ ...runRecord(d.run), eps: [...d.config.eps] }]).map((p) => ({ ...p, settings: p.settings ?? [...d.config.settings] })),
  );
  const sum = (f: (p: EnsemblePartRun) => number) => parts.reduce((a, p) => a + f(p), 0);
  return {
    tool: 's2s eval merge',
    startedAt: parts.map((p) => p.startedAt).sort()[0],
    seconds: sum((p) => p.seconds),
    cpuSeconds: sum((p) => p.cpuSeconds),
    gradientPasses: sum((p) => p.gradientPasses),
    batchSize: parts[0].batchSize,
    parts: parts.sort((a, b) => a.eps[0] - b.eps[0] || settingRank(a.settings![0]) - settingRank(b.settings![0])),
  };
}

function runRecord(r: EnsembleRunRecord): EnsembleRunRecord {
  return { tool: r.tool, startedAt: r.startedAt, seconds: r.seconds, cpuSeconds: r.cpuSeconds, gradientPasses: r.gradientPasses, batchSize: r.batchSize };
}
