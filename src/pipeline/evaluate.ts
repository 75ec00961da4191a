import { DataType } from '../onnx/dtype';
import { Dataset, readBatch } from '../training/dataset';
import { Graph } from '../onnx/graph';
import { ModelSession, createSession } from '../runtime/session';
import { ProviderChoice } from '../runtime/providers';
import { Progress, silentProgress } from './progress';
import { argmax, klScores, psnrPerImage } from './scores';

/**
 * Clean-data evaluation of a model set: top-1 of f, f ∘ AE and f ∘ s, the
 * reconstruction PSNR of AE and s, and the detection score of every image.
 * The classifier must be canonical (input `input` in [0, 1], output
 * `logits`; see compose.ts), the autoencoders output `reconstruction`.
 */
export interface EvalGraphs {
  classifier: Graph | string;
  autoencoder?: Graph | string;
  s2snet?: Graph | string;
}

export interface EvalOptions {
  batchSize?: number;
  provider?: ProviderChoice;
  intraOpThreads?: number;
  progress?: Progress;
  /** evaluate only the first `limit` rows */
  limit?: number;
}

export interface Accuracy {
  correct: number;
  top1: number;
}

export interface EvalResult {
  n: number;
  classifier: Accuracy;
  autoencoder?: Accuracy & { psnrDb: number };
  s2snet?: Accuracy & { psnrDb: number };
  /** KL(softmax f(x) ‖ softmax f(s(x))) per image, when s is given */
  scores?: Float64Array;
}

const open = (g: Graph | string, label: string, o: EvalOptions) =>
  createSession(g, { provider: o.provider ?? 'cpu', intraOpThreads: o.intraOpThreads ?? 0, label });

async function logitsOf(f: ModelSession, images: Float32Array, dims: number[]): Promise<Float32Array> {
  const r = await f.run({ input: { dataType: DataType.FLOAT, dims, data: images } }, ['logits']);
  return r.logits.data as Float32Array;
}

async function reconstruct(ae: ModelSession, images: Float32Array, dims: number[]): Promise<Float32Array> {
  const r = await ae.run({ input: { dataType: DataType.FLOAT, dims, data: images } }, ['reconstruction']);
  return r.reconstruction.data as Float32Array;
}

export async function evaluate(graphs: EvalGraphs, data: Dataset, opts: EvalOptions = {}): Promise<EvalResult> {
  const batch = opts.batchSize ?? 250;
  const n = Math.min(data.size, opts.limit ?? data.size);
  const per = data.shape.reduce((a, b) => a * b, 1);
  const progress = opts.progress ?? silentProgress;
  const f = await open(graphs.classifier, 'classifier', opts);
  const ae = graphs.autoencoder ? await open(graphs.autoencoder, 'autoencoder', opts) : undefined;
  const s = graphs.s2snet ? await open(graphs.s2snet, 's2snet', opts) : undefined;
  const count = { f: 0, ae: 0, s: 0 };
  const psnr = { ae: 0, s: 0 };
  const scores = s ? new Float64Array(n) : undefined;
  let k = 0;
  try {
    for (let start = 0; start < n; start += batch) {
      const rows = Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
      const b = await readBatch(data, rows);
      if (!b.labels) throw new Error('evaluate: the dataset has no labels');
      const dims = [rows.length, ...data.shape];
      const clean = await logitsOf(f, b.images, dims);
      k = clean.length / rows.length;
      const hits = (logits: Float32Array) => rows.reduce((acc, _, i) => acc + (argmax(logits, i, k) === Number(b.labels![i]) ? 1 : 0), 0);
      count.f += hits(clean);
      if (ae) {
        const r = await reconstruct(ae, b.images, dims);
        count.ae += hits(await logitsOf(f, r, dims));
        psnr.ae += psnrPerImage(b.images, r, per).reduce((a, v) => a + v, 0);
      }
      if (s) {
        const r = await reconstruct(s, b.images, dims);
        const defended = await logitsOf(f, r, dims);
        count.s += hits(defended);
        psnr.s += psnrPerImage(b.images, r, per).reduce((a, v) => a + v, 0);
        scores!.set(klScores(clean, defended, k), start);
      }
      progress.tick(rows.length, { 'f': pct(count.f, start + rows.length) });
    }
  } finally {
    progress.stop();
    await Promise.all([f, ae, s].map((x) => x?.release()));
  }
  const acc = (c: number): Accuracy => ({ correct: c, top1: c / n });
  return {
    n,
    classifier: acc(count.f),
    autoencoder: ae ? { ...acc(count.ae), psnrDb: psnr.ae / n } : undefined,
    s2snet: s ? { ...acc(count.s), psnrDb: psnr.s / n } : undefined,
    scores,
  };
}

/** Detection scores only (calibration on held-out clean images needs no labels). */
export async function detectionScores(classifier: Graph | string, s2snet: Graph | string, data: Dataset, opts: EvalOptions = {}): Promise<Float64Array> {
  const batch = opts.batchSize ?? 250;
  const n = Math.min(data.size, opts.limit ?? data.size);
  const progress = opts.progress ?? silentProgress;
  const f = await open(classifier, 'classifier', opts);
  const s = await open(s2snet, 's2snet', opts);
  const out = new Float64Array(n);
  try {
    for (let start = 0; start < n; start += batch) {
      const rows = Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
      const b = await readBatch(data, rows);
      const dims = [rows.length, ...data.shape];
      const clean = await logitsOf(f, b.images, dims);
      const defended = await logitsOf(f, await reconstruct(s, b.images, dims), dims);
      out.set(klScores(clean, defended, clean.length / rows.length), start);
      progress.tick(rows.length);
    }
  } finally {
    progress.stop();
    await f.release();
    await s.release();
  }
  return out;
}

export const pct = (c: number, n: number): string => `${((100 * c) / Math.max(1, n)).toFixed(2)}%`;
