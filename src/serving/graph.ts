import { GraphBuilder } from '../onnx/builder';
import { composeGraphs } from '../onnx/compose';
import { Graph, NameScope, attr } from '../onnx/graph';
import { floatTensor, int64Tensor } from '../onnx/tensor';
import { Manifest, perChannel } from '../models/manifest';
import { UserError } from '../util/errors';
import { STAGES, StageContext } from './stages';
import { imageShape } from './stages/types';

/**
 * The serving graph of a model set: one ONNX graph, one session run per batch.
 *
 *   input ─┬─ defence chain (noise → S2SNet …) ─ defended ─┐
 *          └──────────────────────────────────────────────┴─ Concat(axis 0) → (x−mean)/std → f → logits [2N,K]
 *   logits → clean/defended halves → LogSoftmax each
 *     probs          = softmax f(defended)                    [N,K]
 *     score          = KL(softmax f(x) ‖ softmax f(defended))  [N]
 *     reconstruction = defended                               [N,C,H,W]  (what the classifier sees)
 *
 * The classifier runs once on the clean and defended images stacked along
 * the batch axis, so its weights exist once and both paths share one kernel
 * launch per layer.
 */

export const SERVING_OPSET = 13;
export const SERVING_OUTPUTS = ['probs', 'score', 'reconstruction'] as const;

/** Gives value `from` the name `to`, first moving any other value called `to` out of the way. */
function exposeAs(g: Graph, from: string, to: string): void {
  if (from === to) return;
  const scope = new NameScope(g);
  const rename = (a: string, b: string) => {
    const swap = (n: string) => (n === a ? b : n);
    for (const node of g.nodes) {
      node.inputs = node.inputs.map(swap);
      node.outputs = node.outputs.map(swap);
    }
    g.outputs = g.outputs.map((v) => (v.name === a ? { ...v, name: b } : v));
    const vi = g.valueInfo.get(a);
    if (vi) {
      g.valueInfo.delete(a);
      g.valueInfo.set(b, { ...vi, name: b });
    }
  };
  if (scope.has(to)) rename(to, scope.fresh(`${to}_inner`));
  rename(from, to);
}

function checkModel(g: Graph, key: string, m: Manifest): void {
  // Composition raises every part to the highest opset; below 13 that would change Softmax/Squeeze semantics silently.
  if (g.opset < SERVING_OPSET) throw new UserError(`model set '${m.name}': ${key} uses opset ${g.opset}; the service needs opset ≥ ${SERVING_OPSET} (re-export the model)`);
}

/** Concat(clean, defended) → (x − mean)/std; output `normalised` [2N,C,H,W]. */
function headGraph(m: Manifest): Graph {
  const b = new GraphBuilder('head', { opset: SERVING_OPSET });
  const clean = b.input('input', imageShape(m));
  const defended = b.input('defended', imageShape(m));
  let x = b.concat([clean, defended], 0);
  const c = m.input.channels;
  const mean = perChannel(m.input.mean, c);
  const std = perChannel(m.input.std, c);
  if (mean.some((v) => v !== 0)) x = b.sub(x, b.constant(floatTensor([1, c, 1, 1], mean), 'mean'));
  if (std.some((v) => v !== 1)) x = b.div(x, b.constant(floatTensor([1, c, 1, 1], std), 'std'));
  b.output(x, 'normalised');
  return b.build();
}

/** logits [2N,K] → probs [N,K] (defended) and score [N] (KL clean ‖ defended). */
function tailGraph(k: number): Graph {
  const b = new GraphBuilder('tail', { opset: SERVING_OPSET });
  const logits = b.input('logits', ['M', k]);
  const halves = b.reshape(logits, [2, -1, k]);
  const half = (i: number) => b.op('Gather', [halves, b.constant(int64Tensor([], [i]), 'half')], { axis: attr.int(0) });
  const lc = b.logSoftmax(half(0), 1);
  const ld = b.logSoftmax(half(1), 1);
  const pc = b.op('Exp', [lc]);
  const kl = b.node('ReduceSum', [b.mul(pc, b.sub(lc, ld)), b.ints64([1], 'axes')], { keepdims: attr.int(0) })[0];
  // Rounding can leave KL a hair below zero; a divergence is never negative.
  b.output(b.relu(kl), 'score');
  b.output(b.op('Exp', [ld]), 'probs');
  return b.build();
}

/** Composes the serving graph from the manifest and the set's graphs (by file key). */
export function buildServingGraph(m: Manifest, graphs: Record<string, Graph>): Graph {
  const classifier = graphs.classifier;
  if (!classifier) throw new UserError(`model set '${m.name}' has no classifier graph`);
  if (!classifier.inputs.some((v) => v.name === 'input') || classifier.inputs.length !== 1) {
    throw new UserError(`model set '${m.name}': the classifier must have exactly one input named 'input' (has ${classifier.inputs.map((v) => v.name).join(', ')})`);
  }
  if (!classifier.outputs.some((v) => v.name === 'logits')) {
    throw new UserError(`model set '${m.name}': the classifier has no output 'logits' (outputs: ${classifier.outputs.map((v) => v.name).join(', ')})`);
  }
  for (const [key, g] of Object.entries(graphs)) checkModel(g, key, m);

  const ctx: StageContext = { manifest: m, graphs, opset: SERVING_OPSET };
  // The defence chain, stage by stage; each stage's extra inputs (noise) become serving inputs.
  const [first, ...rest] = m.defence.chain.map((s) => ({ stage: s, built: STAGES[s.stage](s, ctx) }));
  if (first.built.input !== 'input') throw new Error(`stage '${first.stage.stage}' reads '${first.built.input}', expected 'input'`);
  let chain = { ...first.built.graph, outputs: first.built.graph.outputs.filter((v) => v.name === first.built.output) };
  let defended = first.built.output;
  for (const { stage, built } of rest) {
    const c = composeGraphs(chain, built.graph, {
      connect: [[defended, built.input]],
      shareInputs: true,
      prefix: `${stage.stage}/`,
      outputs: [{ from: 'second', name: built.output }],
      name: 'defence',
    });
    chain = c.graph;
    defended = c.renamed.get(built.output) ?? built.output;
  }

  const withHead = composeGraphs(chain, headGraph(m), {
    connect: [[defended, 'defended']],
    shareInputs: true,
    prefix: 'head/',
    outputs: [
      { from: 'second', name: 'normalised' },
      { from: 'first', name: defended },
    ],
  });
  const normalised = withHead.renamed.get('normalised') ?? 'normalised';
  const withClassifier = composeGraphs(withHead.graph, classifier, {
    connect: [[normalised, 'input']],
    prefix: 'classifier/',
    outputs: [
      { from: 'second', name: 'logits' },
      { from: 'first', name: defended },
    ],
  });
  const logits = withClassifier.renamed.get('logits') ?? 'logits';
  const serving = composeGraphs(withClassifier.graph, tailGraph(m.labels.length), {
    connect: [[logits, 'logits']],
    prefix: 'tail/',
    name: `${m.name}-serving`,
    outputs: [
      { from: 'second', name: 'probs' },
      { from: 'second', name: 'score' },
      { from: 'first', name: defended },
    ],
  });
  const g = serving.graph;
  exposeAs(g, serving.renamed.get('probs') ?? 'probs', 'probs');
  exposeAs(g, serving.renamed.get('score') ?? 'score', 'score');
  exposeAs(g, defended, 'reconstruction');
  g.metadata = { ...(g.metadata ?? {}), 's2s.model': m.name, 's2s.version': m.version, 's2s.chain': m.defence.chain.map((s) => s.stage).join('>') };
  return g;
}
