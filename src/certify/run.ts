import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadModelSet } from '../models/loader';
import { loadModel } from '../onnx/io';
import type { Graph } from '../onnx/graph';
import type { Dataset } from '../data/dataset';
import { Geometry, openData } from '../pipeline/data';
import { holdoutSplit } from '../pipeline/splits';
import { sha256Of } from '../pipeline/model-set';
import { cpuSecondsSince } from '../pipeline/run-stage';
import { selectRows } from '../evaluation/selection';
import type { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { BaseKind, baseGraphsOf, buildBaseClassifier } from './base-classifier';
import { openBaseSession } from './base-session';
import { seededNoise } from './noise-source';
import { CERTIFY_FILE, CertifyResults, ImageCertificate, ModelCertification, summarise } from './results';
import { drawSampler } from './sampler';
import { ABSTAIN, certify } from './smoothing';

/**
 * `s2s certify`: CERTIFY on a seeded subset of the test set, for each
 * requested base classifier of a model set (f, f ∘ s, f ∘ AE) and any extra
 * classifier files (e.g. one trained with Gaussian augmentation), at each σ.
 * The noise of image `row` comes from streams seeded by (seed, row, phase),
 * the same for every model and σ (common random numbers make the comparison
 * between models sharper and cost nothing).
 */

export interface ExtraClassifier {
  name: string;
  path: string;
}

export interface CertifyRunOptions {
  models: string;
  bases: BaseKind[];
  /** bare classifiers smoothed on their own (base f) */
  classifiers: ExtraClassifier[];
  /** other denoisers in front of the set's classifier (base f ∘ d), e.g. a stage-2 recipe's S2SNet */
  denoisers?: ExtraClassifier[];
  sigmas: number[];
  n0: number;
  n: number;
  alpha: number;
  limit?: number;
  seed: number;
  batch: number;
  data?: string;
  /**
   * Certify the last `holdout` images of the training data instead of the
   * test set: the rows every training stage held out (pipeline/splits.ts),
   * for choosing between models without looking at the test set.
   */
  holdout?: number;
  provider?: ProviderChoice;
  threads?: number;
  /** clip x + δ to [0, 1] before h (see buildBaseClassifier) */
  clip?: boolean;
  /** earlier runs whose certificates are taken as they are where the draws match (see reusableCertificates) */
  reuse?: CertifyResults[];
  out: string;
  log?: (line: string) => void;
}

/** The test split, or the rows of the training data held out of training (rows then count from the first held-out one). */
async function certificationData(o: CertifyRunOptions, geometry: Geometry): Promise<{ dataset: Dataset; description: string }> {
  if (o.holdout === undefined) return openData(o.data, { split: 'test', labelled: true, geometry });
  const train = await openData(o.data, { split: 'train', labelled: true, geometry });
  const split = holdoutSplit(train.dataset, o.holdout);
  return { dataset: split.holdout, description: `${train.description}, rows ${split.holdoutStart}–${train.dataset.size - 1} (held out of training)` };
}

export async function runCertification(o: CertifyRunOptions): Promise<CertifyResults> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const set = await loadModelSet(o.models);
  const m = set.manifest;
  const shape: [number, number, number] = [m.input.channels, m.input.height, m.input.width];
  const data = await certificationData(o, { channels: m.input.channels, height: m.input.height, width: m.input.width });
  const rows = selectRows(data.dataset.size, o.limit, o.seed);
  const batch = await data.dataset.get(rows);
  if (!batch.labels) throw new UserError('certification needs labelled test data');
  const size = shape[0] * shape[1] * shape[2];

  const graphs = baseGraphsOf(set, o.bases);
  // f∘d clips when its manifest says so, whatever --clip says; the entry records what h did.
  const clipOf = (k: BaseKind) => (o.clip ?? false) || (k === 'f∘d' && (m.smoothing?.clip ?? false));
  const bases: Array<{ name: string; base: string; sha256?: string; graph: Graph; clip: boolean }> = o.bases.map((k) => ({ name: k, base: `${m.name}:${k}`, graph: buildBaseClassifier(m, graphs, k, o.clip), clip: clipOf(k) }));
  const clip = o.clip ?? false;
  for (const c of o.classifiers) bases.push({ name: c.name, base: c.path, sha256: sha256Of(c.path), graph: buildBaseClassifier(m, { classifier: loadModel(c.path) }, 'f', clip), clip });
  for (const d of o.denoisers ?? []) bases.push({ name: d.name, base: `${m.name}:f ∘ ${d.path}`, sha256: sha256Of(d.path), graph: buildBaseClassifier(m, { classifier: graphs.classifier, s2snet: loadModel(d.path) }, 'f∘s', clip), clip });
  if (bases.length === 0) throw new UserError('nothing to certify: give --base, --classifier or --denoiser');

  const results: CertifyResults = {
    kind: 's2s-certify',
    version: 1,
    modelSet: { name: m.name, version: m.version, dir: set.dir },
    settings: { n0: o.n0, n: o.n, alpha: o.alpha, seed: o.seed, batch: o.batch, sigmas: o.sigmas, limit: o.limit, noise: 'seeded', clip: o.clip ?? false },
    data: { source: data.description, size: data.dataset.size, rows },
    models: [],
    complete: false,
  };
  let reused = 0;
  mkdirSync(o.out, { recursive: true });
  const save = () => writeFileSync(join(o.out, CERTIFY_FILE), JSON.stringify(results, null, 1) + '\n');

  for (const b of bases) {
    const session = await openBaseSession(b.graph, shape, { provider: o.provider, intraOpThreads: o.threads, label: `${b.name} (base classifier)` });
    try {
      for (const sigma of o.sigmas) {
        const entry: ModelCertification = { name: b.name, base: b.base, ...(b.sha256 ? { sha256: b.sha256 } : {}), sigma, clip: b.clip, images: [], summary: summarise([]) };
        results.models.push(entry);
        const earlier = reusableCertificates(o.reuse ?? [], results, entry);
        const started = performance.now();
        let computed = 0;
        const progress = () => {
          entry.summary = summarise(entry.images);
          save();
          const per = computed ? (performance.now() - started) / 1000 / computed : 0;
          const taken = entry.images.length - computed;
          log(`certify ${b.name} σ=${sigma}: ${entry.images.length}/${rows.length} images${taken ? ` (${taken} reused)` : ''}, ${per.toFixed(2)} s/image, certified accuracy at 0.5: ${(100 * entry.summary.certifiedAccuracy['0.5']).toFixed(1)}%`);
        };
        for (let i = 0; i < rows.length; i++) {
          const kept = earlier.get(rows[i]);
          if (kept && kept.label === Number(batch.labels[i])) {
            entry.images.push(kept);
            reused++;
            if (i + 1 === rows.length) progress();
            continue;
          }
          const s0 = performance.now();
          const pixels = batch.images.subarray(i * size, (i + 1) * size);
          const sampler = drawSampler({ pixels, sigma, classes: m.labels.length, batch: o.batch, noise: seededNoise(o.seed, rows[i]), run: session.run });
          const c = await certify(sampler, { sigma, n0: o.n0, n: o.n, alpha: o.alpha });
          const label = Number(batch.labels[i]);
          const cert: ImageCertificate = {
            row: rows[i],
            label,
            prediction: c.prediction,
            radius: c.radius,
            correct: c.prediction !== ABSTAIN && c.prediction === label,
            countA: c.countA,
            pALower: c.pALower,
            seconds: (performance.now() - s0) / 1000,
          };
          entry.images.push(cert);
          computed++;
          if (i + 1 === rows.length || computed % 10 === 0) progress();
        }
        entry.summary = summarise(entry.images);
        save();
      }
    } finally {
      await session.session.release();
    }
  }
  results.complete = true;
  results.cost = { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSecondsSince(cpu0), threads: o.threads ?? 0, ...(reused ? { reusedImages: reused } : {}) };
  save();
  return results;
}

/**
 * Certificates of earlier runs that this run would compute again bit for bit:
 * the noise of an image is a stream seeded by (seed, row), so the same model
 * (name, base, σ, clip) with the same n₀, n, α, seed and batch draws the same
 * noise and reaches the same answer. This lets a run on more images (a larger
 * --limit of the same seed selects a superset) or an interrupted run go on
 * without paying again for what is done. Timings are kept as measured then.
 */
export function reusableCertificates(earlier: readonly CertifyResults[], now: CertifyResults, entry: ModelCertification): Map<number, ImageCertificate> {
  const draws = (r: CertifyResults) => JSON.stringify([r.data.source, r.modelSet.name, r.modelSet.version, r.settings.n0, r.settings.n, r.settings.alpha, r.settings.seed, r.settings.batch, r.settings.noise]);
  const found = new Map<number, ImageCertificate>();
  for (const r of earlier) {
    if (draws(r) !== draws(now)) continue;
    for (const m of r.models) {
      if (m.name !== entry.name || m.base !== entry.base || m.sigma !== entry.sigma || (m.clip ?? false) !== (entry.clip ?? false)) continue;
      // A file certified under the same name and path but changed since is another model.
      if (m.sha256 && entry.sha256 && m.sha256 !== entry.sha256) continue;
      for (const c of m.images) found.set(c.row, c);
    }
  }
  return found;
}

/**
 * Combines runs made with the same draws (n₀, n, α, seed and image rows) into
 * one document, e.g. a noise-trained classifier certified after the set's models.
 */
export function mergeCertifyResults(parts: CertifyResults[], sources: string[]): CertifyResults {
  if (parts.length === 0) throw new UserError('certify merge: nothing to merge');
  const [first] = parts;
  const key = (r: CertifyResults) => JSON.stringify({ n0: r.settings.n0, n: r.settings.n, alpha: r.settings.alpha, seed: r.settings.seed, rows: r.data.rows, source: r.data.source, set: r.modelSet.name });
  parts.forEach((r, i) => {
    if (key(r) !== key(first)) throw new UserError(`certify merge: ${sources[i]} was made with other settings or images than ${sources[0]} (n0, n, alpha, seed, data, rows and model set must match)`);
  });
  const models = parts.flatMap((r) => r.models);
  const seen = new Set<string>();
  for (const m of models) {
    const k = `${m.name}@${m.sigma}`;
    if (seen.has(k)) throw new UserError(`certify merge: ${m.name} at σ = ${m.sigma} appears twice`);
    seen.add(k);
  }
  const sigmas = [...new Set(models.map((m) => m.sigma))].sort((a, b) => a - b);
  const reusedImages = parts.reduce((a, r) => a + (r.cost?.reusedImages ?? 0), 0);
  const cost = parts.every((r) => r.cost)
    ? { seconds: parts.reduce((a, r) => a + r.cost!.seconds, 0), cpuSeconds: parts.reduce((a, r) => a + r.cost!.cpuSeconds, 0), threads: first.cost!.threads, ...(reusedImages ? { reusedImages } : {}) }
    : undefined;
  return { ...first, settings: { ...first.settings, sigmas }, models, cost, complete: parts.every((r) => r.complete) };
}
