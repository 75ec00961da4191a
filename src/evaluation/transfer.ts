import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fgsm } from '../attacks/fgsm';
import { OnnxGradientOracle } from '../attacks/oracle';
import { argmax } from '../attacks/objective';
import { streamSeed } from '../attacks/seeding';
import { openData } from '../pipeline/data';
import { Progress, progressBar, silentProgress } from '../pipeline/progress';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { EvalModels, loadEvalModels } from './models';
import { selectRows } from './selection';

/**
 * Transferability (section 4.3, Figure 8): FGSM images crafted on each
 * classifier and classified by every classifier, over the ε grid. The
 * diagonal is the white-box case; off the diagonal, a black-box attacker who
 * owns one model attacks another. Every classifier comes from a model set
 * (its manifest gives the normalisation), and all must take the same images.
 */
export const TRANSFER_SCHEMA = 's2s-transfer';

export interface TransferCell {
  source: string;
  target: string;
  eps: number;
  n: number;
  /** clean images the target classifies correctly */
  cleanCorrect: number;
  adversarialCorrect: number;
  accuracy: number | null;
  /** adversarial accuracy / clean accuracy of the target */
  relativeAccuracy: number | null;
}

export interface TransferResults {
  schema: typeof TRANSFER_SCHEMA;
  version: 1;
  classifiers: { name: string; version: string; sha256: string; cleanAccuracy: number | null }[];
  attack: string;
  eps: number[];
  data: { source: string; size: number; selected: number; limit: number | null; seed: number };
  cells: TransferCell[];
  run: { tool: string; startedAt: string; seconds: number; provider: string };
}

export interface TransferOptions {
  /** model-set folders, or folders holding several sets */
  models: string[];
  data?: string;
  eps: number[];
  limit?: number;
  seed: number;
  batchSize?: number;
  provider?: ProviderChoice;
  threads?: number;
  progress?: boolean;
}

/** Expands folders of model sets into the sets themselves. */
export function modelSetDirs(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (existsSync(join(p, 'manifest.json'))) out.push(p);
    else if (existsSync(p)) {
      const sets = readdirSync(p, { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(join(p, d.name, 'manifest.json')))
        .map((d) => join(p, d.name))
        .sort();
      if (sets.length === 0) throw new UserError(`${p} is neither a model set (no manifest.json) nor a folder of model sets`);
      out.push(...sets);
    } else throw new UserError(`model set ${p} does not exist`);
  }
  return out;
}

export async function runTransfer(o: TransferOptions): Promise<TransferResults> {
  const started = Date.now();
  const dirs = modelSetDirs(o.models);
  if (dirs.length < 2) throw new UserError(`transfer needs at least two classifiers, got ${dirs.length}`);
  const sets: EvalModels[] = [];
  for (const d of dirs) sets.push(await loadEvalModels(d, ['f']));
  const names = sets.map((s) => s.manifest.name);
  if (new Set(names).size !== names.length) throw new UserError(`model sets must have distinct names (got ${names.join(', ')})`);
  const first = sets[0];
  for (const s of sets.slice(1)) {
    if (s.shape.join() !== first.shape.join() || s.numClasses !== first.numClasses) {
      throw new UserError(`${s.manifest.name} takes [${s.shape}] → ${s.numClasses} classes but ${first.manifest.name} takes [${first.shape}] → ${first.numClasses}`);
    }
  }
  const m = first.manifest;
  const data = await openData(o.data, { split: 'test', labelled: true, geometry: { channels: m.input.channels, height: m.input.height, width: m.input.width } });
  const rows = selectRows(data.dataset.size, o.limit, o.seed);
  const sessionOptions = { provider: o.provider ?? 'auto', intraOpThreads: o.threads ?? 0 };
  const oracles = sets.map((s) => OnnxGradientOracle.fromForward(s.manifest.name, s.graphs.f!, sessionOptions));
  const batchSize = o.batchSize ?? 64;
  const k = first.numClasses;
  const attack = fgsm();
  const cells = new Map<string, TransferCell>();
  const clean = new Array(sets.length).fill(0);
  const progress: Progress = o.progress === false ? silentProgress : progressBar('transfer', rows.length * sets.length * o.eps.length, 'img');
  try {
    for (let start = 0; start < rows.length; start += batchSize) {
      const ids = rows.slice(start, start + batchSize);
      const n = ids.length;
      const batch = await data.dataset.get(ids);
      if (!batch.labels) throw new UserError('the data has no labels');
      const y = Int32Array.from(batch.labels, (v) => Number(v));
      const ok: Uint8Array[] = [];
      for (const [t, oracle] of oracles.entries()) {
        const z = await oracle.logits(batch.images);
        ok.push(Uint8Array.from(y, (label, i) => (argmax(z, k, i) === label ? 1 : 0)));
        clean[t] += ok[t].reduce((a, b) => a + b, 0);
      }
      for (const [s, source] of oracles.entries()) {
        for (const eps of o.eps) {
          const adv = await attack.run(source, { x: batch.images, labels: y, ids }, { eps, targeted: false, seed: streamSeed(o.seed, 'transfer', names[s], eps) });
          for (const [t, target] of oracles.entries()) {
            const z = await target.logits(adv);
            const key = `${names[s]}|${names[t]}|${eps}`;
            const cell = cells.get(key) ?? { source: names[s], target: names[t], eps, n: 0, cleanCorrect: 0, adversarialCorrect: 0, accuracy: null, relativeAccuracy: null };
            cell.n += n;
            cell.cleanCorrect += ok[t].reduce((a, b) => a + b, 0);
            for (let i = 0; i < n; i++) if (argmax(z, k, i) === y[i]) cell.adversarialCorrect++;
            cells.set(key, cell);
          }
          progress.tick(n);
        }
      }
    }
  } finally {
    progress.stop();
    for (const oracle of oracles) await oracle.release();
  }
  for (const c of cells.values()) {
    c.accuracy = c.n ? c.adversarialCorrect / c.n : null;
    c.relativeAccuracy = c.cleanCorrect ? c.adversarialCorrect / c.cleanCorrect : null;
  }
  return {
    schema: TRANSFER_SCHEMA,
    version: 1,
    classifiers: sets.map((s, i) => ({
      name: names[i],
      version: s.manifest.version,
      sha256: s.manifest.files.classifier.sha256,
      cleanAccuracy: rows.length ? clean[i] / rows.length : null,
    })),
    attack: 'fgsm',
    eps: [...o.eps],
    data: { source: data.description, size: data.dataset.size, selected: rows.length, limit: o.limit ?? null, seed: o.seed },
    cells: [...cells.values()],
    run: { tool: 's2s transfer', startedAt: new Date(started).toISOString(), seconds: (Date.now() - started) / 1000, provider: sessionOptions.provider },
  };
}
