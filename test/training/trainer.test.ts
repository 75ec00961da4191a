import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { GraphBuilder } from '../../src/onnx/builder';
import { Graph } from '../../src/onnx/graph';
import { TensorData } from '../../src/onnx/tensor';
import { createSession } from '../../src/runtime/session';
import { ArtifactOptions, buildArtifacts, writeArtifacts } from '../../src/training/artifacts';
import { loadCheckpoint } from '../../src/training/checkpoint';
import { Dataset, arrayDataset, readBatch } from '../../src/training/dataset';
import { Trainer, TrainerOptions } from '../../src/training/trainer';
import { Rng } from '../../src/util/random';

const fixture = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');
const train = loadFashionMnist({ dir: fixture, split: 'train' });
const test = loadFashionMnist({ dir: fixture, split: 'test' });
const tmp = () => mkdtempSync(join(tmpdir(), 's2s-train-'));

function mlp(seed = 1, hidden = 64, batchNorm = false): Graph {
  const b = new GraphBuilder('mlp', { seed });
  let h = b.linear(b.flatten(b.input('input', ['N', 1, 28, 28])), { out: hidden, name: 'fc1' });
  if (batchNorm) h = b.batchNorm(h, { name: 'bn1' });
  h = b.relu(h);
  b.output(b.linear(h, { out: 10, name: 'fc2' }), 'logits');
  return b.build();
}

const ce = (requiresGrad: ArtifactOptions['requiresGrad'] = 'all'): ArtifactOptions => ({
  requiresGrad,
  loss: { kind: 'cross-entropy' },
  optimizer: { kind: 'adamw', weightDecay: 0.01 },
});

const base = (artifacts: TrainerOptions['artifacts'], over: Partial<TrainerOptions> = {}): TrainerOptions => ({
  artifacts,
  train,
  batchSize: 50,
  schedule: { kind: 'constant', lr: 2e-3 },
  seed: 11,
  progress: false,
  intraOpThreads: 2,
  ...over,
});

const hex = (t: TensorData) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex');
function sameBits(a: Map<string, TensorData>, b: Map<string, TensorData>): boolean {
  if ([...a.keys()].join() !== [...b.keys()].join()) return false;
  return [...a].every(([k, t]) => hex(t) === hex(b.get(k)!));
}

describe('trainer', () => {
  it('an MLP on the committed Fashion-MNIST subset reaches 75 % test accuracy in 200 steps', async () => {
    const t = await Trainer.create(
      base(buildArtifacts(mlp(), ce()), { eval: test, steps: 200, schedule: { kind: 'cosine', lr: 3e-3, totalSteps: 200, warmupSteps: 10 } }),
    );
    const before = await t.evaluate();
    const r = await t.run();
    await t.release();
    expect(before.accuracy!).toBeLessThan(0.3);
    expect(r.steps).toBe(200);
    expect(r.epochs).toBe(10);
    const final = r.evals[r.evals.length - 1];
    expect(final.step).toBe(200);
    expect(final.images).toBe(500);
    expect(final.accuracy!).toBeGreaterThanOrEqual(0.75);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(r.losses.slice(-20))).toBeLessThan(0.6 * mean(r.losses.slice(0, 20)));
  });

  it('a conv net with training-mode BatchNorm reaches 72 % in 60 steps; the export carries the learnt running statistics', async () => {
    const b = new GraphBuilder('cnn', { seed: 1 });
    let h = b.input('input', ['N', 1, 28, 28]);
    h = b.conv(h, { out: 8, kernel: 3, stride: 2, bias: false, name: 'conv1' });
    h = b.maxPool(b.relu(b.batchNorm(h, { name: 'bn1' })), { kernel: 2 });
    b.output(b.linear(b.flatten(h), { out: 10, name: 'fc' }), 'logits');
    const model = b.build();
    const a = buildArtifacts(model, ce());
    expect(a.info.buffers.map((x) => x.name)).toEqual(['bn1.running_mean', 'bn1.running_var']);
    const t = await Trainer.create(base(a, { eval: test, steps: 60, schedule: { kind: 'cosine', lr: 1e-2, totalSteps: 60, warmupSteps: 5 } }));
    const r = await t.run();
    const g = t.inferenceGraph();
    await t.release();
    expect(r.evals[0].accuracy!).toBeGreaterThanOrEqual(0.72);
    // Running statistics moved away from their initial 0 / 1 and were written into the inference graph.
    const mean = g.initializers.get('bn1.running_mean')!.data as Float32Array;
    const variance = g.initializers.get('bn1.running_var')!.data as Float32Array;
    expect(Math.max(...Array.from(mean, Math.abs))).toBeGreaterThan(0.01);
    expect(Array.from(variance).some((v) => Math.abs(v - 1) > 0.01)).toBe(true);
    expect(g.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(1);

    expect(await accuracyOf(g, test)).toBeCloseTo(r.evals[0].accuracy!, 10);
  });

  it('fused step and separate training/optimizer sessions give the same parameters bit for bit', async () => {
    const a = buildArtifacts(mlp(2, 16), ce());
    const results: Map<string, TensorData>[] = [];
    for (const mode of ['fused', 'separate'] as const) {
      const t = await Trainer.create(base(a, { steps: 12, mode }));
      await t.run();
      results.push(t.values());
      await t.release();
    }
    expect(sameBits(results[0], results[1])).toBe(true);
    // and training moved them
    expect(sameBits(results[0], buildArtifacts(mlp(2, 16), ce()).checkpoint.params)).toBe(false);
  });

  it('resume after an interruption gives the same parameters, optimizer state and cursor as an uninterrupted run', async () => {
    // 1000 images / 64 = 15 batches per epoch: 40 steps cross two epoch boundaries; the schedule has warmup and decay.
    const schedule = { kind: 'cosine' as const, lr: 3e-3, totalSteps: 40, warmupSteps: 5 };
    const a = buildArtifacts(mlp(3, 16, true), ce());
    expect(a.info.buffers.map((b) => b.name)).toEqual(['bn1.running_mean', 'bn1.running_var']);
    const run = async (dir: string, stopAtStep?: number) => {
      const t = await Trainer.create(base(a, { steps: 40, batchSize: 64, schedule, checkpointEvery: 7, checkpointPath: join(dir, 'ckpt'), resume: true }));
      const r = await t.run({ stopAtStep });
      await t.release();
      return r;
    };
    const full = tmp();
    const straight = await run(full);
    expect(straight.stopped).toBe(false);

    const broken = tmp();
    const first = await run(broken, 25); // "killed" after step 25: the last checkpoint on disk is step 21
    expect(first.stopped).toBe(true);
    expect(loadCheckpoint(join(broken, 'ckpt')).step).toBe(21);
    const second = await run(broken);
    expect(second.steps).toBe(40);
    // Steps 22..40 of the resumed run saw the same batches and learning rates as the uninterrupted one.
    expect(second.losses).toEqual(straight.losses.slice(21));

    const x = loadCheckpoint(join(full, 'ckpt'));
    const y = loadCheckpoint(join(broken, 'ckpt'));
    expect([y.step, y.epoch, y.batchInEpoch, y.rng]).toEqual([x.step, x.epoch, x.batchInEpoch, x.rng]);
    expect(sameBits(y.params, x.params)).toBe(true);
    expect(sameBits(y.optimizerState, x.optimizerState)).toBe(true);
    expect(sameBits(y.buffers, x.buffers)).toBe(true);
    // The running statistics did move (they are state the checkpoint must carry).
    expect(sameBits(x.buffers, a.checkpoint.buffers)).toBe(false);

    // Resuming with another batch size would silently train on other batches: refused.
    await expect(Trainer.create(base(a, { steps: 40, batchSize: 32, schedule, checkpointPath: join(broken, 'ckpt'), resume: true }))).rejects.toThrow(
      /written with batch size 64, this run has 32/,
    );
  });

  it('frozen parameters get no gradient and keep their bytes; the export is the original graph with trained values', async () => {
    const model = mlp(4, 16);
    const a = buildArtifacts(model, { ...ce(['fc2.*']) });
    expect(a.info.params.map((p) => p.name)).toEqual(['fc2.weight', 'fc2.bias']);
    expect(a.training.outputs.map((o) => o.name)).toEqual(['loss', 'grad_fc2.weight', 'grad_fc2.bias']);
    // No node of the training graph computes anything for fc1's weights: the frozen layer is forward-only.
    const fc1Consumers = a.training.nodes.filter((n) => n.inputs.includes('fc1.weight'));
    expect(fc1Consumers.map((n) => n.opType)).toEqual(['Gemm']);

    const t = await Trainer.create(base(a, { steps: 10, eval: test }));
    const r = await t.run();
    const g = t.inferenceGraph();
    await t.release();
    expect(g.nodes.map((n) => `${n.opType}:${n.name}`)).toEqual(model.nodes.map((n) => `${n.opType}:${n.name}`));
    expect(g.inputs.map((v) => v.name)).toEqual(['input']);
    expect(g.outputs.map((v) => v.name)).toEqual(['logits']);
    for (const n of ['fc1.weight', 'fc1.bias']) expect(hex(g.initializers.get(n)!)).toBe(hex(model.initializers.get(n)!));
    expect(hex(g.initializers.get('fc2.weight')!)).not.toBe(hex(model.initializers.get('fc2.weight')!));

    // The exported graph classifies as the trainer's eval said it would.
    expect(await accuracyOf(g, test)).toBeCloseTo(r.evals[0].accuracy!, 10);
  });

  it('an autoencoder learns to reconstruct its input (mse, target = input) and reports PSNR', async () => {
    const b = new GraphBuilder('ae', { seed: 5 });
    const x = b.flatten(b.input('input', ['N', 1, 28, 28]));
    const code = b.relu(b.linear(x, { out: 32, name: 'enc' }));
    b.output(b.reshape(b.sigmoid(b.linear(code, { out: 784, name: 'dec', init: 'glorot' })), [-1, 1, 28, 28]), 'reconstruction');
    const a = buildArtifacts(b.build(), { requiresGrad: 'all', loss: { kind: 'mse' }, optimizer: { kind: 'adamw', weightDecay: 0 } });
    expect(a.info.labelsInput).toBeUndefined();
    expect(a.info.loss.target).toBe('input');
    const unlabelled = withoutLabels(train);
    const t = await Trainer.create(base(a, { train: unlabelled, eval: test, steps: 60, schedule: { kind: 'constant', lr: 5e-3 } }));
    const before = await t.evaluate();
    const r = await t.run();
    await t.release();
    const after = r.evals[0];
    expect(after.loss).toBeLessThan(0.5 * before.loss);
    expect(after.psnr!).toBeGreaterThan(before.psnr! + 3);
  });

  it('stage-2 style: decoder trains against a frozen classifier with the label-free KL loss', async () => {
    const clsB = new GraphBuilder('f', { seed: 6 });
    clsB.output(clsB.linear(clsB.flatten(clsB.input('input', ['N', 1, 28, 28])), { out: 10, name: 'cls' }), 'logits');
    const f = clsB.build();
    // s: a bottleneck that starts far from identity; f∘s built by hand so names stay readable.
    const b = new GraphBuilder('f_s', { seed: 7 });
    const x = b.flatten(b.input('input', ['N', 1, 28, 28]));
    const enc = b.relu(b.linear(x, { out: 24, name: 'encoder' }));
    const rec = b.sigmoid(b.linear(enc, { out: 784, name: 'decoder', init: 'glorot' }));
    const w = b.constant(f.initializers.get('cls.weight')!, 'cls.weight');
    const bias = b.constant(f.initializers.get('cls.bias')!, 'cls.bias');
    b.output(b.op('Gemm', [rec, w, bias], { transB: { kind: 'int', value: 1 } }), 'logits');
    const fs = b.build();

    const a = buildArtifacts(fs, { requiresGrad: ['decoder.*'], loss: { kind: 'kl', reference: { classifier: f } }, optimizer: { kind: 'adamw', weightDecay: 0 } });
    expect(a.info.params.map((p) => p.name)).toEqual(['decoder.weight', 'decoder.bias']);
    expect(a.info.frozen).toEqual(['encoder.weight', 'encoder.bias', 'cls.weight', 'cls.bias']);
    const dir = tmp();
    writeArtifacts(dir, a);
    const unlabelled = withoutLabels(train);
    const t = await Trainer.create(base(dir, { train: unlabelled, eval: subsetOf(test, 200), steps: 40, schedule: { kind: 'constant', lr: 3e-3 } }));
    const before = await t.evaluate();
    const r = await t.run();
    const g = t.inferenceGraph();
    await t.release();
    expect(r.evals[0].loss).toBeLessThan(0.7 * before.loss);
    expect(g.outputs.map((o) => o.name)).toEqual(['logits']);
    expect([...g.initializers.keys()].some((k) => k.startsWith('reference/'))).toBe(false);
    for (const n of ['encoder.weight', 'encoder.bias', 'cls.weight']) expect(hex(g.initializers.get(n)!)).toBe(hex(fs.initializers.get(n)!));
  });

  it('refuses data that does not fit the model, and a cross-entropy run without labels', async () => {
    const a = buildArtifacts(mlp(8, 8), ce());
    const small = arrayDataset(new Float32Array(4 * 16), [1, 4, 4], new BigInt64Array(4));
    await expect(Trainer.create(base(a, { train: small, steps: 1 }))).rejects.toThrow(/takes images of \[1,28,28\], the training data has \[1,4,4\]/);
    const noLabels = withoutLabels(train);
    const t = await Trainer.create(base(a, { train: noLabels, steps: 1 }));
    await expect(t.run()).rejects.toThrow(/cross-entropy loss needs labels/);
    await t.release();
  });
});

/** Top-1 of an inference graph over a whole labelled dataset, run directly in ORT. */
async function accuracyOf(g: Graph, ds: Dataset): Promise<number> {
  const s = await createSession(g, { provider: 'cpu' });
  const all = await readBatch(ds, Array.from({ length: ds.size }, (_, i) => i));
  const out = await s.run({ input: new ort.Tensor('float32', all.images, [ds.size, ...ds.shape]) });
  await s.release();
  const logits = out.logits.data as Float32Array;
  const k = logits.length / ds.size;
  let correct = 0;
  for (let i = 0; i < ds.size; i++) {
    const row = Array.from(logits.subarray(i * k, (i + 1) * k));
    if (BigInt(row.indexOf(Math.max(...row))) === all.labels![i]) correct++;
  }
  return correct / ds.size;
}

function withoutLabels(ds: Dataset): Dataset {
  return { size: ds.size, shape: ds.shape, get: async (i) => ({ images: (await ds.get(i)).images }) };
}

function subsetOf(ds: Dataset, n: number): Dataset {
  const rng = new Rng(1);
  const rows = rng.permutation(ds.size).slice(0, n);
  return { size: n, shape: ds.shape, get: (i) => ds.get(i.map((k) => rows[k])) };
}
