import { flagged } from './detection';
import { ENSEMBLE_DETECTOR, EnsembleDetection, EnsembleDetectionRow, combinedDetection } from './ensemble-detection';
import type { EnsembleComparison, EnsembleResults, EnsembleRow, EnsembleSettingName, MemberRecord } from './ensemble';
import { ModelKey } from './settings';
import { mcnemar, pairedCounts, wilson } from './statistics';

/**
 * What an ensemble document derives from its per-image outcomes: the
 * tallies of a row, the combined worst cases, the paired tests and the
 * detector's summary. runEnsemble and mergeEnsembleResults both build their
 * documents with these, so a merged document is the one a single run would
 * have written.
 */

/**
 * Worst cases over several settings that judge the same model: an image is
 * robust only if it survives every member of every one of them.
 */
export const ENSEMBLE_COMBINED: readonly { name: string; of: EnsembleSettingName[]; description: string }[] = [
  { name: 'defended', of: ['whitebox', 'whitebox-bpda'], description: 'f ∘ s against every member with both gradient sources (through s and BPDA)' },
  { name: 'autoencoder-all', of: ['autoencoder', 'autoencoder-bpda'], description: 'f ∘ AE against every member with both gradient sources (through the AE and BPDA)' },
];

/** f ∘ s against f ∘ AE: each pair is tested wherever both rows exist. */
const COMPARED: readonly [string, string][] = [
  ['defended', 'autoencoder-all'],
  ['whitebox', 'autoencoder'],
  ['whitebox-bpda', 'autoencoder-bpda'],
];

export function ensembleRow(setting: string, source: string, target: ModelKey, eps: number, n: number, cleanOk: Uint8Array, robust: Uint8Array, members: MemberRecord[]): EnsembleRow {
  const cleanCorrect = cleanOk.reduce((a, b) => a + b, 0);
  const r = robust.reduce((a, b) => a + b, 0);
  return {
    setting,
    source,
    target,
    eps,
    n,
    cleanCorrect,
    robust: r,
    accuracy: n > 0 ? r / n : 0,
    ci: wilson(r, n),
    relative: cleanCorrect > 0 ? r / cleanCorrect : null,
    members,
    outcomes: Array.from(robust, (v) => (v ? '1' : '0')).join(''),
  };
}

/** The combined rows of every ε at which all their parts were run. */
export function combinedRows(rows: readonly EnsembleRow[], clean: EnsembleResults['clean'], eps: readonly number[]): EnsembleRow[] {
  const combined: EnsembleRow[] = [];
  for (const c of ENSEMBLE_COMBINED) {
    for (const e of eps) {
      const parts = c.of.map((s) => rows.find((r) => r.setting === s && r.eps === e));
      if (parts.some((p) => !p)) continue;
      const n = parts[0]!.n;
      const robust = Uint8Array.from({ length: n }, (_, i) => (parts.every((p) => p!.outcomes[i] === '1') ? 1 : 0));
      const target = parts[0]!.target;
      const cleanRecord = clean.find((r) => r.model === target)!;
      const r = ensembleRow(c.name, c.of.join('+'), target, e, n, new Uint8Array(n), robust, []);
      r.cleanCorrect = cleanRecord.correct;
      r.relative = cleanRecord.correct > 0 ? r.robust / cleanRecord.correct : null;
      combined.push(r);
    }
  }
  return combined;
}

/** Exact McNemar tests of f ∘ s against f ∘ AE on the same images, per ε. */
export function pairedComparisons(rows: readonly EnsembleRow[], combined: readonly EnsembleRow[], eps: readonly number[]): EnsembleComparison[] {
  const comparisons: EnsembleComparison[] = [];
  const all = [...rows, ...combined];
  for (const e of eps) {
    for (const [a, b] of COMPARED) {
      const ra = all.find((r) => r.setting === a && r.eps === e);
      const rb = all.find((r) => r.setting === b && r.eps === e);
      if (!ra || !rb) continue;
      const c = pairedCounts(ra.outcomes, rb.outcomes);
      comparisons.push({ eps: e, a, b, onlyA: c.onlyA, onlyB: c.onlyB, p: mcnemar(c.onlyA, c.onlyB) });
    }
  }
  return comparisons;
}

/** The detection block: the clean images flagged and the combined worst cases, from the clean scores and the per-setting rows. */
export function detectionSummary(threshold: number, clean: readonly number[], rows: EnsembleDetectionRow[], eps: readonly number[]): EnsembleDetection {
  const combined = ENSEMBLE_COMBINED.flatMap((c) =>
    eps.flatMap((e) => {
      const parts = c.of.map((s) => rows.find((r) => r.setting === s && r.eps === e));
      return parts.every(Boolean) ? [combinedDetection(c.name, e, parts as EnsembleDetectionRow[])] : [];
    }),
  );
  return { detector: ENSEMBLE_DETECTOR, threshold, clean: [...clean], cleanFlagged: clean.filter((v) => flagged(v, threshold)).length, rows, combined };
}
