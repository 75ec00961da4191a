/**
 * Training-step benchmark (not a test): for a few builder-defined models at
 * batch 64 on this machine's CPU, the median milliseconds of
 *   forward            inference session on the model alone
 *   training_model     forward + loss + gradients (gradients into pre-allocated buffers)
 *   step (separate)    training_model, then optimizer_model (ORT's own split)
 *   step (fused)       one session.run of forward + backward + AdamW (what the Trainer runs)
 * and the ratio of a fused step to a forward pass.
 *
 *   npx tsx bench/training.ts [--batch 64] [--iters 20] [--threads 0] [--models mlp,cnn,ae]
 */
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/onnx/builder';
import { Graph } from '../src/onnx/graph';
import { createSession } from '../src/runtime/session';
import { ArtifactOptions, buildArtifacts } from '../src/training/artifacts';
import { Dataset, arrayDataset } from '../src/training/dataset';
import { Trainer } from '../src/training/trainer';
import { Rng } from '../src/util/random';
import { arg } from './support/cli';

const batch = Number(arg('batch', '64'));
const iters = Number(arg('iters', '20'));
const threads = Number(arg('threads', '0'));
const only = arg('models', 'mlp,cnn,ae').split(',');

function mlp(): Graph {
  const b = new GraphBuilder('mlp', { seed: 1 });
  let h = b.flatten(b.input('input', ['N', 1, 28, 28]));
  h = b.relu(b.linear(h, { out: 256, name: 'fc1' }));
  h = b.relu(b.linear(h, { out: 128, name: 'fc2' }));
  b.output(b.linear(h, { out: 10, name: 'fc3' }), 'logits');
  return b.build();
}

/** conv-BN-ReLU ×2 with max-pooling, then a linear head. */
function cnn(): Graph {
  const b = new GraphBuilder('cnn', { seed: 2 });
  let h = b.input('input', ['N', 1, 28, 28]);
  for (const [i, c] of [32, 64].entries()) {
    h = b.relu(b.batchNorm(b.conv(h, { out: c, kernel: 3, bias: false, name: `conv${i}` }), { name: `bn${i}` }));
    h = b.maxPool(h, { kernel: 2 });
  }
  b.output(b.linear(b.flatten(h), { out: 10, name: 'fc' }), 'logits');
  return b.build();
}

/** A SegNet-like autoencoder: 2 stages of conv-BN-ReLU at 32/64 channels, pooling with indices, unpooling. */
function ae(): Graph {
  const b = new GraphBuilder('ae', { seed: 3 });
  let h = b.input('input', ['N', 1, 28, 28]);
  const pools: Array<{ indices: string; like: string }> = [];
  for (const [i, c] of [32, 64].entries()) {
    h = b.relu(b.batchNorm(b.conv(h, { out: c, kernel: 3, bias: false, name: `enc${i}` }), { name: `enc${i}.bn` }));
    const p = b.maxPoolWithIndices(h, { kernel: 2 });
    pools.push({ indices: p.indices, like: h });
    h = p.output;
  }
  for (const [i, c] of [32, 16].entries()) {
    const p = pools.pop()!;
    h = b.maxUnpool(h, p.indices, { kernel: 2, like: p.like });
    h = b.relu(b.batchNorm(b.conv(h, { out: c, kernel: 3, bias: false, name: `dec${i}` }), { name: `dec${i}.bn` }));
  }
  b.output(b.sigmoid(b.conv(h, { out: 1, kernel: 3, name: 'out' })), 'reconstruction');
  return b.build();
}

const models: Array<{ name: string; graph: () => Graph; loss: ArtifactOptions['loss'] }> = [
  { name: 'mlp', graph: mlp, loss: { kind: 'cross-entropy' } },
  { name: 'cnn', graph: cnn, loss: { kind: 'cross-entropy' } },
  { name: 'ae', graph: ae, loss: { kind: 'mse' } },
];

function data(n: number): Dataset {
  const rng = new Rng(5);
  const x = Float32Array.from({ length: n * 784 }, () => rng.uniform());
  const y = BigInt64Array.from({ length: n }, () => BigInt(rng.int(10)));
  return arrayDataset(x, [1, 28, 28], y);
}

/**
 * Median milliseconds of each function, timed round-robin (one call of each
 * per round) so that load from other processes hits all of them alike.
 */
async function medians(fns: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  const times: Record<string, number[]> = {};
  for (let round = 0; round < iters + 3; round++) {
    for (const [k, fn] of Object.entries(fns)) {
      const t = performance.now();
      await fn();
      if (round >= 3) (times[k] ??= []).push(performance.now() - t);
    }
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(times)) out[k] = v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  return out;
}

async function main() {
  const ds = data(batch);
  const b = await ds.get(Array.from({ length: batch }, (_, i) => i));
  const rows: Array<Record<string, string | number>> = [];
  for (const m of models.filter((x) => only.includes(x.name))) {
    const g = m.graph();
    let params = 0;
    for (const t of g.initializers.values()) params += t.data.length;
    const artifacts = buildArtifacts(g, { requiresGrad: 'all', loss: m.loss, optimizer: { kind: 'adamw' } });
    const input = new ort.Tensor('float32', b.images, [batch, 1, 28, 28]);

    const fwd = await createSession(g, { provider: 'cpu', intraOpThreads: threads });
    // training_model alone: the gradient pass without the update.
    const tr = await createSession(artifacts.training, { provider: 'cpu', intraOpThreads: threads });
    const feeds: Record<string, ort.Tensor> = { [artifacts.info.imageInput]: input };
    if (artifacts.info.labelsInput) feeds[artifacts.info.labelsInput] = new ort.Tensor('int64', b.labels!, [batch]);
    for (const [n, t] of [...artifacts.checkpoint.params, ...artifacts.checkpoint.buffers]) feeds[n] = new ort.Tensor('float32', t.data as Float32Array, t.dims);
    const trainers: Record<string, Trainer> = {};
    for (const mode of ['separate', 'fused'] as const) {
      trainers[mode] = await Trainer.create({ artifacts, train: ds, batchSize: batch, steps: 1e9, schedule: { kind: 'constant', lr: 1e-4 }, seed: 1, mode, provider: 'cpu', intraOpThreads: threads, progress: false });
    }
    const t = await medians({
      forward: () => fwd.session.run({ input }),
      training: () => tr.session.run(feeds),
      separate: () => trainers.separate.trainStep(b),
      fused: () => trainers.fused.trainStep(b),
    });
    await fwd.release();
    await tr.release();
    for (const x of Object.values(trainers)) await x.release();

    rows.push({
      model: m.name,
      params,
      'forward ms': t.forward.toFixed(2),
      'training_model ms': t.training.toFixed(2),
      'step separate ms': t.separate.toFixed(2),
      'step fused ms': t.fused.toFixed(2),
      'fused / forward': (t.fused / t.forward).toFixed(2),
      'img/s (fused)': Math.round((batch * 1000) / t.fused),
    });
  }
  const load = require('node:os').loadavg()[0].toFixed(1);
  console.log(`batch ${batch}, median of ${iters} round-robin iterations, intra-op threads ${threads || 'all'}, onnxruntime-node ${require('onnxruntime-node/package.json').version}, load average ${load}`);
  console.table(rows);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
