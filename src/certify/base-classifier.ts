import { GraphBuilder } from '../onnx/builder';
import { composeGraphs } from '../onnx/compose';
import { Graph, attr } from '../onnx/graph';
import { floatTensor } from '../onnx/tensor';
import { Manifest, perChannel } from '../models/manifest';
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
 * the plain autoencoder. The noise is added outside the graph and not
 * clipped to [0, 1], as in both papers: the certificate holds for whatever
 * h is, and clipping would only be another part of h.
 */

export type BaseKind = 'f' | 'f∘s' | 'f∘ae';
export const BASE_KINDS: readonly BaseKind[] = ['f', 'f∘s', 'f∘ae'];

/** `f`, `f∘s`, `f∘ae` (also `fs`, `f-s`, `f∘AE`, …) → BaseKind */
export function parseBaseKind(text: string): BaseKind {
  const t = text.trim().toLowerCase().replace(/[∘\-_. ]/g, '');
  const map: Record<string, BaseKind> = { f: 'f', fs: 'f∘s', fae: 'f∘ae' };
  const k = map[t];
  if (!k) throw new UserError(`unknown base classifier '${text}'; use one of ${BASE_KINDS.join(', ')}`);
  return k;
}

function denoiserKey(kind: BaseKind): 's2snet' | 'autoencoder' | undefined {
  return kind === 'f∘s' ? 's2snet' : kind === 'f∘ae' ? 'autoencoder' : undefined;
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
 * on clipped noisy images (the stage-2 recipes) expects.
 */
export function buildBaseClassifier(m: Manifest, graphs: { classifier: Graph; s2snet?: Graph; autoencoder?: Graph }, kind: BaseKind, clip = false): Graph {
  needIo(graphs.classifier, `model set '${m.name}': the classifier`, 'input', 'logits');
  const key = denoiserKey(kind);
  let front = normaliseGraph(m);
  if (key) {
    const d = graphs[key];
    if (!d) throw new UserError(`model set '${m.name}' has no ${key} (files.${key}); base classifier ${kind} needs it`);
    needIo(d, `model set '${m.name}': ${key}`, 'input', 'reconstruction');
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
