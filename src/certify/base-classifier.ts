import { GraphBuilder } from '../onnx/builder';
import { composeGraphs } from '../onnx/compose';
import { Graph, attr } from '../onnx/graph';
import { floatTensor } from '../onnx/tensor';
import type { ModelSet } from '../models/loader';
import { Manifest, perChannel } from '../models/manifest';
import { loadModel } from '../onnx/io';
import { SERVING_OPSET } from '../serving/graph';
import { imageShape } from '../serving/stages/types';
import { UserError } from '../util/errors';

/**
 * The base classifier h that randomized smoothing wraps, as one ONNX graph:
 *
 *   input z [N,C,H,W] (x + δ, not clipped) → denoiser? → (z − mean)/std → f → ArgMax → prediction [N] int64
 *
 * `f` alone is plain smoothing (Cohen et al.), `f ∘ s` is denoised smoothing
 * with the S2SNet as denoiser (Salman et al. 2020), `f ∘ ae` the same with
 * the plain autoencoder, `f ∘ d` with the denoiser the set trained for
 * smoothing (manifest `smoothing`). The noise is added outside the graph and not
 * clipped to [0, 1], as in both papers: the certificate holds for whatever
 * h is, and clipping would only be another part of h.
 */

export type BaseKind = 'f' | 'f∘s' | 'f∘ae' | 'f∘d';
export const BASE_KINDS: readonly BaseKind[] = ['f', 'f∘s', 'f∘ae', 'f∘d'];

/** `f`, `f∘s`, `f∘ae`, `f∘d` (also `fs`, `f-s`, `f∘AE`, …) → BaseKind */
export function parseBaseKind(text: string): BaseKind {
  const t = text.trim().toLowerCase().replace(/[∘\-_. ]/g, '');
  const map: Record<string, BaseKind> = { f: 'f', fs: 'f∘s', fae: 'f∘ae', fd: 'f∘d' };
  const k = map[t];
  if (!k) throw new UserError(`unknown base classifier '${text}'; use one of ${BASE_KINDS.join(', ')}`);
  return k;
}

export interface BaseGraphs {
  classifier: Graph;
  s2snet?: Graph;
  autoencoder?: Graph;
  /** the set's smoothing denoiser (manifest `smoothing.denoiser`) */
  denoiser?: Graph;
}

function denoiserKey(kind: BaseKind): 's2snet' | 'autoencoder' | 'denoiser' | undefined {
  return kind === 'f∘s' ? 's2snet' : kind === 'f∘ae' ? 'autoencoder' : kind === 'f∘d' ? 'denoiser' : undefined;
}

/** files keys of the graphs a base kind needs, beyond the classifier */
export function baseFileKeys(m: Manifest, kind: BaseKind): Array<{ graph: keyof BaseGraphs; file: string }> {
  const key = denoiserKey(kind);
  if (!key) return [];
  if (key === 'denoiser') {
    if (!m.smoothing) throw new UserError(`model set '${m.name}' has no smoothing denoiser (manifest smoothing); base classifier f∘d needs one`);
    return [{ graph: 'denoiser', file: m.smoothing.denoiser }];
  }
  return [{ graph: key, file: key }];
}

/** The graphs of a verified set that these base kinds need, each loaded once. */
export function baseGraphsOf(set: ModelSet, kinds: readonly BaseKind[]): BaseGraphs {
  const graphs: BaseGraphs = { classifier: loadModel(set.paths.classifier) };
  for (const kind of kinds) {
    for (const { graph, file } of baseFileKeys(set.manifest, kind)) {
      const path = set.paths[file];
      if (!path) throw new UserError(`model set '${set.manifest.name}' has no files.${file}; base classifier ${kind} needs it`);
      graphs[graph] ??= loadModel(path);
    }
  }
  return graphs;
}

/** (z − mean)/std → 'normalised' */
function normaliseGraph(m: Manifest): Graph {
  const b = new GraphBuilder('normalise', { opset: SERVING_OPSET });
  let x = b.input('input', imageShape(m));
  const c = m.input.channels;
  const mean = perChannel(m.input.mean, c);
  const std = perChannel(m.input.std, c);
  if (mean.some((v) => v !== 0)) x = b.sub(x, b.constant(floatTensor([1, c, 1, 1], mean), 'mean'));
  if (std.some((v) => v !== 1)) x = b.div(x, b.constant(floatTensor([1, c, 1, 1], std), 'std'));
  b.output(b.op('Identity', [x]), 'normalised');
  return b.build();
}

/** logits → argmax over classes */
function argmaxGraph(k: number): Graph {
  const b = new GraphBuilder('argmax', { opset: SERVING_OPSET });
  const logits = b.input('logits', ['N', k]);
  b.output(b.op('ArgMax', [logits], { axis: attr.int(1), keepdims: attr.int(0) }), 'prediction');
  return b.build();
}

function needIo(g: Graph, what: string, input: string, output: string): void {
  if (g.inputs.length !== 1 || g.inputs[0].name !== input) throw new UserError(`${what} must have exactly one input named '${input}' (has ${g.inputs.map((v) => v.name).join(', ')})`);
  if (!g.outputs.some((v) => v.name === output)) throw new UserError(`${what} has no output '${output}' (outputs: ${g.outputs.map((v) => v.name).join(', ')})`);
  if (g.opset < SERVING_OPSET) throw new UserError(`${what} uses opset ${g.opset}; certification needs opset ≥ ${SERVING_OPSET}`);
}

/** z → clip(z, 0, 1) under the name 'reconstruction', so it composes like a denoiser. */
function clipGraph(m: Manifest): Graph {
  const b = new GraphBuilder('clip', { opset: SERVING_OPSET });
  b.output(b.clip(b.input('input', imageShape(m)), 0, 1), 'reconstruction');
  return b.build();
}

/**
 * h for one base kind, from the manifest and the set's graphs by file key.
 * `clip` clips x + δ to [0, 1] first (h is then f(s(clip(z)))): still a base
 * classifier like any other for the certificate, and what a denoiser trained
 * on clipped noisy images (the stage-2 recipes) expects. `f∘d` clips when the
 * manifest says its denoiser was trained so.
 */
export function buildBaseClassifier(m: Manifest, graphs: BaseGraphs, kind: BaseKind, clip = false): Graph {
  needIo(graphs.classifier, `model set '${m.name}': the classifier`, 'input', 'logits');
  const key = denoiserKey(kind);
  if (kind === 'f∘d') clip ||= m.smoothing?.clip ?? false;
  let front = normaliseGraph(m);
  if (key) {
    const d = graphs[key];
    const file = baseFileKeys(m, kind)[0].file;
    if (!d) throw new UserError(`model set '${m.name}' has no ${key} (files.${file}); base classifier ${kind} needs it`);
    needIo(d, `model set '${m.name}': files.${file}`, 'input', 'reconstruction');
    front = composeGraphs({ ...d, outputs: d.outputs.filter((v) => v.name === 'reconstruction') }, front, {
      connect: [['reconstruction', 'input']],
      prefix: 'normalise/',
    }).graph;
  }
  if (clip) front = composeGraphs(clipGraph(m), front, { connect: [['reconstruction', 'input']], prefix: 'front/' }).graph;
  const normalised = front.outputs[0].name;
  const withF = composeGraphs(front, graphs.classifier, { connect: [[normalised, 'input']], prefix: 'classifier/' });
  const logits = withF.renamed.get('logits') ?? 'logits';
  const h = composeGraphs({ ...withF.graph, outputs: withF.graph.outputs.filter((v) => v.name === logits) }, argmaxGraph(m.labels.length), {
    connect: [[logits, 'logits']],
    prefix: 'argmax/',
    name: `${m.name}-${kind}-base`,
  });
  return h.graph;
}
