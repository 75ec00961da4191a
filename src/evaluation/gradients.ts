import * as ort from 'onnxruntime-node';
import { ssim } from 'ssim.js';
import { appendMse, buildGradientGraph } from '../autodiff';
import { OnnxGradientOracle } from '../attacks/oracle';
import { streamRng } from '../attacks/seeding';
import { DataType } from '../onnx/dtype';
import { Graph, cloneGraph } from '../onnx/graph';
import { openData } from '../pipeline/data';
import { Progress, progressBar, silentProgress } from '../pipeline/progress';
import { reconstructionOutput } from '../pipeline/compose';
import { ModelSession, createSession } from '../runtime/session';
import { ProviderChoice } from '../runtime/providers';
import { UserError } from '../util/errors';
import { EvalModels, loadEvalModels } from './models';
import { ModelSetInfo } from './results';
import { selectRows } from './selection';

/**
 * The paper's gradient analysis (section 3.2, Table 1): how similar the
 * input-gradient magnitudes of f, f ∘ s, f ∘ AE (classification loss, true
 * label) and of s and AE alone (reconstruction loss) are, as mean SSIM over
 * the evaluation images; and, for the three classifiers, how much the
 * gradient changes when a random other label replaces the true one.
 *
 * A magnitude map is |∇x L| per pixel (the L2 norm over colour channels),
 * scaled so its largest value is 255 and cast to 8 bits: SSIM compares where
 * gradients are, not how large they are, and the five losses differ in scale
 * by orders of magnitude. SSIM is ssim.js's Gaussian-window implementation
 * (Wang et al. 2004: 11×11 window, σ = 1.5, K1 = 0.01, K2 = 0.03), without
 * the automatic downsampling.
 *
 * The reconstruction loss of s and AE is the per-image MSE against the
 * clean input, held constant (the counterpart of a label).
 */
export type GradientModel = 'f' | 'fs' | 'fae' | 's' | 'ae';

export const GRADIENT_MODELS: readonly GradientModel[] = ['f', 'fs', 'fae', 's', 'ae'];
export const LABEL_MODELS: readonly GradientModel[] = ['f', 'fs', 'fae'];
export const GRADIENT_MODEL_NAMES: Record<GradientModel, string> = { f: 'f', fs: 'f ∘ s', fae: 'f ∘ AE', s: 's (reconstruction)', ae: 'AE (reconstruction)' };

export const GRADIENTS_SCHEMA = 's2s-gradient-analysis';

export interface GradientResults {
  schema: typeof GRADIENTS_SCHEMA;
  version: 1;
  modelSet: ModelSetInfo;
  data: { source: string; size: number; selected: number; limit: number | null; seed: number };
  ssimOptions: { implementation: string; window: number; sigma: number; k1: number; k2: number };
  /** every unordered pair of GRADIENT_MODELS */
  pairs: { a: GradientModel; b: GradientModel; meanSsim: number; n: number }[];
  /** SSIM between the gradients for the true label and for a random other label */
  labels: { model: GradientModel; meanSsim: number; n: number }[];
  /** magnitude maps of the first images, like the paper's Figure 2 */
  examples: { id: number; label: number; pixels: string; maps: Record<GradientModel, string> }[];
  /** [C, H, W] of the images; maps are [H, W] */
  shape: number[];
  run: { tool: string; startedAt: string; seconds: number; provider: string };
}

export interface GradientAnalysisOptions {
  models: string;
  data?: string;
  limit?: number;
  seed: number;
  batchSize?: number;
  examples?: number;
  provider?: ProviderChoice;
  threads?: number;
  progress?: boolean;
}

const SSIM_OPTIONS = { ssim: 'fast' as const, downsample: false as const, windowSize: 11, k1: 0.01, k2: 0.03, bitDepth: 8 };

/** Gradient of the per-image MSE between an autoencoder's output and a constant target. */
export function reconstructionGradientGraph(ae: Graph): Graph {
  const g = cloneGraph(ae);
  const input = g.inputs.find((v) => v.name === 'input');
  if (!input) throw new UserError(`autoencoder '${ae.name}' has no input 'input'`);
  g.inputs.push({ name: 'target', dataType: DataType.FLOAT, shape: input.shape && [...input.shape] });
  const { graph, loss } = appendMse(g, reconstructionOutput(ae), 'target');
  return buildGradientGraph({ graph, loss, wrt: ['input'] }).graph;
}

/** |∇| per pixel (L2 over channels), scaled to 0…255. */
export function magnitudeMap(grad: Float32Array, offset: number, shape: readonly number[]): Uint8Array {
  const [c, h, w] = shape;
  const mag = new Float64Array(h * w);
  let peak = 0;
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += grad[offset + ch * h * w + p] ** 2;
    mag[p] = Math.sqrt(s);
    if (mag[p] > peak) peak = mag[p];
  }
  return Uint8Array.from(mag, (v) => (peak > 0 ? Math.round((255 * v) / peak) : 0));
}

/** Mean SSIM of two 8-bit grey maps of the same size. */
export function mapSsim(a: Uint8Array, b: Uint8Array, width: number, height: number): number {
  const rgba = (m: Uint8Array) => {
    const d = new Uint8ClampedArray(m.length * 4);
    for (let i = 0; i < m.length; i++) {
      d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = m[i];
      d[4 * i + 3] = 255;
    }
    return { data: d, width, height };
  };
  return ssim(rgba(a), rgba(b), SSIM_OPTIONS).mssim;
}

export async function runGradientAnalysis(o: GradientAnalysisOptions): Promise<GradientResults> {
  const started = Date.now();
  const models: EvalModels = await loadEvalModels(o.models, ['f', 'fs', 'fae']);
  if (!models.s2snet || !models.autoencoder) throw new UserError(`model set ${o.models} needs both files.s2snet and files.autoencoder for the gradient analysis`);
  const [c, h, w] = models.shape;
  if (h < SSIM_OPTIONS.windowSize || w < SSIM_OPTIONS.windowSize) throw new UserError(`images of ${h}×${w} are smaller than the ${SSIM_OPTIONS.windowSize}×${SSIM_OPTIONS.windowSize} SSIM window`);
  const m = models.manifest;
  const data = await openData(o.data, { split: 'test', labelled: true, geometry: { channels: m.input.channels, height: m.input.height, width: m.input.width } });
  const rows = selectRows(data.dataset.size, o.limit, o.seed);
  const batchSize = o.batchSize ?? 64;
  const per = c * h * w;
  const k = models.numClasses;
  const sessionOptions = { provider: o.provider ?? 'auto', intraOpThreads: o.threads ?? 0 };
  const classifiers = new Map(LABEL_MODELS.map((key) => [key, OnnxGradientOracle.fromForward(key, models.graphs[key as 'f' | 'fs' | 'fae']!, sessionOptions)]));
  const recon = new Map<GradientModel, ModelSession>([
    ['s', await createSession(reconstructionGradientGraph(models.s2snet), { ...sessionOptions, label: 's/reconstruction-gradient' })],
    ['ae', await createSession(reconstructionGradientGraph(models.autoencoder), { ...sessionOptions, label: 'ae/reconstruction-gradient' })],
  ]);
  const pairKeys: [GradientModel, GradientModel][] = [];
  GRADIENT_MODELS.forEach((a, i) => GRADIENT_MODELS.slice(i + 1).forEach((b) => pairKeys.push([a, b])));
  const pairSums = new Map(pairKeys.map(([a, b]) => [`${a}|${b}`, 0]));
  const labelSums = new Map(LABEL_MODELS.map((key) => [key, 0]));
  const examples: GradientResults['examples'] = [];
  const exampleCount = o.examples ?? 4;
  const progress: Progress = o.progress === false ? silentProgress : progressBar('gradients', rows.length, 'img');
  try {
    for (let start = 0; start < rows.length; start += batchSize) {
      const ids = rows.slice(start, start + batchSize);
      const n = ids.length;
      const batch = await data.dataset.get(ids);
      if (!batch.labels) throw new UserError('the data has no labels');
      const y = Int32Array.from(batch.labels, (v) => Number(v));
      const other = Int32Array.from(y, (label, i) => {
        const t = streamRng(o.seed, 'gradient-label', ids[i]).int(k - 1);
        return t >= label ? t + 1 : t;
      });
      const grads = new Map<GradientModel, Float32Array>();
      const randomLabel = new Map<GradientModel, Float32Array>();
      for (const key of LABEL_MODELS) {
        const oracle = classifiers.get(key)!;
        grads.set(key, Float32Array.from((await oracle.gradient({ x: batch.images, labels: y, loss: 'cross-entropy', ids, step: 0 })).grad));
        randomLabel.set(key, Float32Array.from((await oracle.gradient({ x: batch.images, labels: other, loss: 'cross-entropy', ids, step: 0 })).grad));
      }
      for (const [key, session] of recon) {
        const images = new ort.Tensor('float32', batch.images, [n, c, h, w]);
        const r = await session.run({ input: images, target: images }, ['grad_input']);
        grads.set(key, Float32Array.from(r.grad_input.data as Float32Array));
      }
      for (let i = 0; i < n; i++) {
        const maps = new Map(GRADIENT_MODELS.map((key) => [key, magnitudeMap(grads.get(key)!, i * per, models.shape)]));
        for (const [a, b] of pairKeys) pairSums.set(`${a}|${b}`, pairSums.get(`${a}|${b}`)! + mapSsim(maps.get(a)!, maps.get(b)!, w, h));
        for (const key of LABEL_MODELS) {
          labelSums.set(key, labelSums.get(key)! + mapSsim(maps.get(key)!, magnitudeMap(randomLabel.get(key)!, i * per, models.shape), w, h));
        }
        if (start + i < exampleCount) {
          const pixels = Buffer.from(Uint8Array.from(batch.images.subarray(i * per, (i + 1) * per), (v) => Math.round(v * 255))).toString('base64');
          const encoded = Object.fromEntries([...maps].map(([key, map]) => [key, Buffer.from(map).toString('base64')])) as Record<GradientModel, string>;
          examples.push({ id: ids[i], label: y[i], pixels, maps: encoded });
        }
      }
      progress.tick(n);
    }
  } finally {
    progress.stop();
    for (const oracle of classifiers.values()) await oracle.release();
    for (const s of recon.values()) await s.release();
  }
  const n = rows.length;
  const files: Record<string, string> = {};
  for (const [key, ref] of Object.entries(m.files)) if (ref) files[key] = ref.sha256;
  return {
    schema: GRADIENTS_SCHEMA,
    version: 1,
    modelSet: { name: m.name, version: m.version, files, labels: [...m.labels], shape: [...models.shape] },
    data: { source: data.description, size: data.dataset.size, selected: n, limit: o.limit ?? null, seed: o.seed },
    ssimOptions: { implementation: 'ssim.js (Gaussian window, no downsampling)', window: SSIM_OPTIONS.windowSize, sigma: 1.5, k1: SSIM_OPTIONS.k1, k2: SSIM_OPTIONS.k2 },
    pairs: pairKeys.map(([a, b]) => ({ a, b, meanSsim: pairSums.get(`${a}|${b}`)! / n, n })),
    labels: LABEL_MODELS.map((key) => ({ model: key, meanSsim: labelSums.get(key)! / n, n })),
    examples,
    shape: [...models.shape],
    run: { tool: 's2s gradients', startedAt: new Date(started).toISOString(), seconds: (Date.now() - started) / 1000, provider: sessionOptions.provider },
  };
}
