/**
 * Attack benchmark (not a test): images per second of BIM-10 and CW-100 on
 * the defended model f ∘ s (the white-box setting: gradients through the
 * S2SNet) at batch 64 on the CPU, with the forward pass of the same graph
 * timed in the same run as the baseline, and each attack's cost in forward
 * passes. The three runs are interleaved round after round, so load from
 * anything else on the machine hits them alike; medians are reported.
 *
 *   npm run bench:attacks [-- --models models/fashion-mnist --rounds 5 --threads 0]
 *
 * Without a trained model set at --models, the default set's architectures
 * (resnet-small classifier, segnet-small S2SNet) are built with random
 * weights: the cost of a pass does not depend on the weights.
 */
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildArchitecture } from '../src/architectures/architectures';
import { bim } from '../src/attacks/bim';
import { cw } from '../src/attacks/cw';
import { OnnxGradientOracle } from '../src/attacks/oracle';
import { loadEvalModels } from '../src/evaluation/models';
import { Graph } from '../src/onnx/graph';
import { composeDefended } from '../src/pipeline/compose';
import { openData } from '../src/pipeline/data';
import { createSession } from '../src/runtime/session';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const modelsDir = arg('models', 'models/fashion-mnist');
const rounds = Number(arg('rounds', '5'));
const threads = Number(arg('threads', '0'));
const BATCH = 64;
const EPS = 0.05;

async function defendedGraph(): Promise<{ graph: Graph; what: string }> {
  if (existsSync(`${modelsDir}/manifest.json`)) {
    const m = await loadEvalModels(modelsDir, ['fs']);
    return { graph: m.graphs.fs!, what: `${m.manifest.name} ${m.manifest.version} (${modelsDir})` };
  }
  const f = buildArchitecture('resnet-small', { seed: 1 });
  const s = buildArchitecture('segnet-small', { seed: 2 });
  return { graph: composeDefended(s, f), what: `resnet-small ∘ segnet-small with random weights (no model set at ${modelsDir})` };
}

async function main(): Promise<void> {
  const { graph, what } = await defendedGraph();
  const data = await openData(process.env.FASHION_MNIST_DIR ?? (existsSync('/usr/share/datasets/fashion-mnist') ? undefined : 'test/fixtures/fashion-mnist-small'), {
    split: 'test',
    labelled: true,
  });
  const ids = Array.from({ length: BATCH }, (_, i) => i);
  const batch = await data.dataset.get(ids);
  const x = batch.images;
  const labels = Int32Array.from(batch.labels!, (v) => Number(v));
  const options = { provider: 'cpu' as const, intraOpThreads: threads };
  const oracle = OnnxGradientOracle.fromForward('f∘s', graph, options);
  const forward = await createSession(graph, { ...options, label: 'f∘s' });
  const input = new ort.Tensor('float32', x, [BATCH, ...data.dataset.shape]);
  const runs: Record<string, () => Promise<unknown>> = {
    forward: () => forward.run({ input }, ['logits']),
    'BIM-10': () => bim({ iterations: 10 }).run(oracle, { x, labels, ids }, { eps: EPS, targeted: false, seed: 0 }),
    'CW-100': () => cw({ iterations: 100, searchSteps: 1 }).run(oracle, { x, labels, ids }, { eps: EPS, targeted: false, seed: 0 }),
  };
  // Warm-up: builds the gradient graphs and sessions, lets ORT settle its thread pools.
  for (const run of Object.values(runs)) await run();
  const times = new Map<string, number[]>(Object.keys(runs).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(runs)) {
      const t0 = performance.now();
      await run();
      times.get(name)!.push((performance.now() - t0) / 1000);
    }
    process.stderr.write(`round ${r + 1}/${rounds}\n`);
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const base = median(times.get('forward')!);
  console.log(`defended model: ${what}`);
  console.log(`batch ${BATCH}, ε = ${EPS}, CPU, intra-op threads ${threads || 'all'}, ${rounds} rounds, medians`);
  for (const [name, t] of times) {
    const s = median(t);
    console.log(`${name.padEnd(8)} ${(BATCH / s).toFixed(1).padStart(9)} images/s  ${(1000 * s).toFixed(0).padStart(7)} ms/batch  ${(s / base).toFixed(1).padStart(6)}× forward`);
  }
  await oracle.release();
  await forward.release();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
