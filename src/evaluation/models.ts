import * as ort from 'onnxruntime-node';
import { Manifest } from '../models/manifest';
import { ModelSet, loadModelSet } from '../models/loader';
import { Graph } from '../onnx/graph';
import { loadModel } from '../onnx/io';
import { canonicalClassifier, composeDefended, imageGeometry } from '../pipeline/compose';
import { ModelSession, SessionOptions, createSession } from '../runtime/session';
import { UserError } from '../util/errors';
import { ModelKey } from './settings';

/**
 * The graphs an evaluation runs, made from a model set: f with the
 * manifest's normalisation in front, f ∘ s and f ∘ AE composed here from the
 * set's own files (so the reconstruction is an output the gallery can show),
 * and s and AE alone for the gradient analysis.
 */
export interface EvalModels {
  set: ModelSet;
  manifest: Manifest;
  /** [C, H, W] */
  shape: [number, number, number];
  numClasses: number;
  graphs: Partial<Record<ModelKey, Graph>>;
  s2snet?: Graph;
  autoencoder?: Graph;
}

export async function loadEvalModels(dir: string, needed: Iterable<ModelKey>): Promise<EvalModels> {
  const set = await loadModelSet(dir);
  const m = set.manifest;
  const f = canonicalClassifier(loadModel(set.paths.classifier), { mean: m.input.mean, std: m.input.std });
  const shape = imageGeometry(f, 'classifier');
  const want = [m.input.channels, m.input.height, m.input.width];
  if (shape.join() !== want.join()) throw new UserError(`model set ${dir}: classifier takes [${shape}] but the manifest says [${want}]`);
  const graphs: Partial<Record<ModelKey, Graph>> = { f };
  const keys = new Set(needed);
  const part = (key: 's2snet' | 'autoencoder') => {
    const path = set.paths[key];
    if (!path) return undefined;
    const g = loadModel(path);
    const geo = imageGeometry(g, key);
    if (geo.join() !== shape.join()) throw new UserError(`model set ${dir}: ${key} takes [${geo}] but the classifier takes [${shape}]`);
    return g;
  };
  // s is loaded whenever the set has one: the detector (KL between f and f ∘ s) needs it in every setting.
  const s2snet = part('s2snet');
  const autoencoder = keys.has('fae') ? part('autoencoder') : undefined;
  if (keys.has('fs') && !s2snet) throw new UserError(`model set ${dir} has no files.s2snet, which the S2SNet settings need`);
  if (keys.has('fae') && !autoencoder) throw new UserError(`model set ${dir} has no files.autoencoder, which the autoencoder setting needs`);
  if (s2snet) graphs.fs = composeDefended(s2snet, f, 'f_of_s');
  if (autoencoder) graphs.fae = composeDefended(autoencoder, f, 'f_of_ae');
  const out = f.outputs.find((o) => o.name === 'logits')?.shape?.[1];
  if (typeof out !== 'number') throw new UserError(`model set ${dir}: the classifier's logits need a static class axis`);
  if (out !== m.labels.length) throw new UserError(`model set ${dir}: the classifier has ${out} outputs but the manifest lists ${m.labels.length} labels`);
  return { set, manifest: m, shape, numClasses: out, graphs, s2snet, autoencoder };
}

/** Forward sessions of the evaluation models, opened on first use. */
export class ForwardSessions {
  private readonly open = new Map<ModelKey, Promise<ModelSession>>();

  constructor(
    private readonly models: EvalModels,
    private readonly options: SessionOptions,
  ) {}

  private session(key: ModelKey): Promise<ModelSession> {
    let s = this.open.get(key);
    if (!s) {
      const g = this.models.graphs[key];
      if (!g) throw new Error(`model '${key}' is not loaded`);
      s = createSession(g, { ...this.options, label: key });
      this.open.set(key, s);
    }
    return s;
  }

  /** Logits, and the reconstruction for f ∘ s and f ∘ AE when asked for. */
  async run(key: ModelKey, x: Float32Array, withReconstruction = false): Promise<{ logits: Float32Array; reconstruction?: Float32Array }> {
    const s = await this.session(key);
    const per = this.models.shape.reduce((a, d) => a * d, 1);
    const feed = new ort.Tensor('float32', x, [x.length / per, ...this.models.shape]);
    const outputs = withReconstruction && key !== 'f' ? ['logits', 'reconstruction'] : ['logits'];
    const r = await s.run({ input: feed }, outputs);
    return { logits: r.logits.data as Float32Array, reconstruction: r.reconstruction?.data as Float32Array | undefined };
  }

  async release(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const s of all) await (await s).release();
  }
}
