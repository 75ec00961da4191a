import { GraphBuilder } from '../onnx/builder';
import { composeGraphs } from '../onnx/compose';
import { Graph } from '../onnx/graph';
import { floatTensor } from '../onnx/tensor';
import { UserError } from '../util/errors';

/**
 * Graph plumbing shared by the training stages and the exports: finding a
 * classifier's input and logits whatever it calls them, putting the
 * manifest's (x − mean)/std in front of it, and composing f ∘ s.
 */

export interface Normalisation {
  /** per channel, or one value for all channels */
  mean: number[];
  std: number[];
}

export const IDENTITY_NORMALISATION: Normalisation = { mean: [0], std: [1] };

export function isIdentity(n: Normalisation): boolean {
  return n.mean.every((v) => v === 0) && n.std.every((v) => v === 1);
}

/** The one image input of a graph (initializers listed as inputs by old exporters are skipped). */
export function imageInput(g: Graph, what: string): string {
  const inputs = g.inputs.filter((v) => !g.initializers.has(v.name));
  if (inputs.length !== 1) throw new UserError(`${what} '${g.name}' must have exactly one input (has ${inputs.map((v) => v.name).join(', ') || 'none'})`);
  return inputs[0].name;
}

/** `logits` when the graph has it, otherwise its only output. */
export function logitsOutput(g: Graph, what = 'classifier'): string {
  if (g.outputs.some((v) => v.name === 'logits')) return 'logits';
  if (g.outputs.length === 1) return g.outputs[0].name;
  throw new UserError(`${what} '${g.name}' has several outputs and none named 'logits' (outputs: ${g.outputs.map((v) => v.name).join(', ')})`);
}

/** `reconstruction` when the graph has it, otherwise its only output. */
export function reconstructionOutput(g: Graph, what = 'autoencoder'): string {
  if (g.outputs.some((v) => v.name === 'reconstruction')) return 'reconstruction';
  if (g.outputs.length === 1) return g.outputs[0].name;
  throw new UserError(`${what} '${g.name}' has several outputs and none named 'reconstruction' (outputs: ${g.outputs.map((v) => v.name).join(', ')})`);
}

/** [C, H, W] of a graph's image input; every axis but the batch must be static. */
export function imageGeometry(g: Graph, what: string): [number, number, number] {
  const name = imageInput(g, what);
  const shape = g.inputs.find((v) => v.name === name)!.shape;
  if (!shape || shape.length !== 4 || shape.slice(1).some((d) => typeof d !== 'number')) {
    throw new UserError(`${what} '${g.name}': input '${name}' must be [N, C, H, W] with static C, H, W (is [${shape?.join(', ') ?? '?'}])`);
  }
  return shape.slice(1) as [number, number, number];
}

/**
 * The classifier as the project's convention wants it: input `input` in
 * [0, 1], output `logits`. Normalisation, when the classifier expects it, is
 * prepended as Sub/Div nodes; the classifier's weights are untouched.
 */
export function canonicalClassifier(f: Graph, norm: Normalisation = IDENTITY_NORMALISATION): Graph {
  const [c, h, w] = imageGeometry(f, 'classifier');
  const inName = imageInput(f, 'classifier');
  const outName = logitsOutput(f);
  const mean = expand(norm.mean, c, 'mean');
  const std = expand(norm.std, c, 'std');
  const scales = mean.some((v) => v !== 0) || std.some((v) => v !== 1);
  if (!scales && inName === 'input' && outName === 'logits' && f.outputs.length === 1) return f;
  const b = new GraphBuilder('input_stage', { opset: f.opset });
  let x = b.input('input', ['N', c, h, w]);
  if (mean.some((v) => v !== 0)) x = b.sub(x, b.constant(floatTensor([1, c, 1, 1], mean), 'normalise_mean'));
  if (std.some((v) => v !== 1)) x = b.div(x, b.constant(floatTensor([1, c, 1, 1], std), 'normalise_std'));
  b.output(x, 'normalised');
  const composed = composeGraphs(b.build(), f, { connect: [['normalised', inName]], prefix: 'classifier/', name: f.name });
  const logits = composed.renamed.get(outName) ?? outName;
  return renameOutput(composed.graph, logits, 'logits', true);
}

/** One value per channel, expanding the one-value form. */
export function expand(values: number[], channels: number, what: string): number[] {
  if (values.length === 1) return new Array(channels).fill(values[0]);
  if (values.length !== channels) throw new UserError(`${what} has ${values.length} values for ${channels} channels`);
  return [...values];
}

/** Renames a graph output (and every use of it); `only` drops the other outputs. */
export function renameOutput(g: Graph, from: string, to: string, only = false): Graph {
  const out: Graph = { ...g, outputs: g.outputs.filter((v) => !only || v.name === from) };
  if (from === to) return out;
  const clash = g.nodes.some((n) => n.outputs.includes(to)) || g.inputs.some((v) => v.name === to) || g.initializers.has(to);
  if (clash) throw new Error(`renameOutput: graph '${g.name}' already has a value '${to}'`);
  const swap = (n: string) => (n === from ? to : n);
  out.nodes = g.nodes.map((n) => ({ ...n, inputs: n.inputs.map(swap), outputs: n.outputs.map(swap) }));
  out.outputs = out.outputs.map((v) => (v.name === from ? { ...v, name: to } : v));
  return out;
}

/**
 * f ∘ s as one inference graph: `input` → s → `reconstruction` → f → `logits`.
 * `f` must be canonical (see canonicalClassifier). The S2SNet's
 * reconstruction stays an output so a caller can look at what f sees.
 */
export function composeDefended(s: Graph, f: Graph, name = 'defended'): Graph {
  const recon = reconstructionOutput(s, 's2snet');
  const c = composeGraphs(s, f, {
    connect: [[recon, 'input']],
    prefix: 'classifier/',
    name,
    outputs: [
      { from: 'second', name: 'logits' },
      { from: 'first', name: recon },
    ],
  });
  return c.graph;
}
