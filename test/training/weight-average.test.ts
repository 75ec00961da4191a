import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { GraphBuilder } from '../../src/onnx/builder';
import { Graph } from '../../src/onnx/graph';
import { TensorData } from '../../src/onnx/tensor';
import { createSession } from '../../src/runtime/session';
import { buildArtifacts } from '../../src/training/artifacts';
import { loadCheckpoint } from '../../src/training/checkpoint';
import { readBatch } from '../../src/training/dataset';
import { Trainer, TrainerOptions } from '../../src/training/trainer';

/**
 * Weight averaging (TrainerOptions.average, `--average-decay`): the trainer
 * keeps an exponential moving average of the parameters and running
 * statistics beside the live weights. These tests recompute the average from
 * the live weights step by step and hold the trainer to it bit for bit.
 */
const fixture = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');
const train = loadFashionMnist({ dir: fixture, split: 'train' });
const test = loadFashionMnist({ dir: fixture, split: 'test' });

function mlpWithBatchNorm(): Graph {
  const b = new GraphBuilder('mlp', { seed: 3 });
  const h = b.relu(b.batchNorm(b.linear(b.flatten(b.input('input', ['N', 1, 28, 28])), { out: 16, name: 'fc1' }), { name: 'bn1' }));
  b.output(b.linear(h, { out: 10, name: 'fc2' }), 'logits');
  return b.build();
}

const artifacts = () => buildArtifacts(mlpWithBatchNorm(), { requiresGrad: 'all', loss: { kind: 'cross-entropy' }, optimizer: { kind: 'adamw', weightDecay: 0.01 } });
const options = (a: TrainerOptions['artifacts'], over: Partial<TrainerOptions> = {}): TrainerOptions => ({
  artifacts: a,
  train,
  batchSize: 64,
  steps: 30,
  schedule: { kind: 'constant', lr: 3e-3 },
  seed: 5,
  progress: false,
  intraOpThreads: 1,
  ...over,
});

const hex = (t: TensorData) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex');
const sameBits = (a: Map<string, TensorData>, b: Map<string, TensorData>) => [...a.keys()].join() === [...b.keys()].join() && [...a].every(([k, t]) => hex(t) === hex(b.get(k)!));

/** The average as documented: avg ← avg + (1 − d)(w − avg) after step t, d = min(decay, (1 + t)/(10 + t)), in float32. */
function expectedAverage(start: Map<string, TensorData>, liveAfterEachStep: Array<Map<string, TensorData>>, decay: number): Map<string, Float32Array> {
  const avg = new Map([...start].map(([k, t]) => [k, (t.data as Float32Array).slice()]));
  liveAfterEachStep.forEach((live, i) => {
    const t = i + 1;
    const e = 1 - Math.min(decay, (1 + t) / (10 + t));
    for (const [k, a] of avg) {
      const w = live.get(k)!.data as Float32Array;
      for (let j = 0; j < a.length; j++) a[j] += e * (w[j] - a[j]);
    }
  });
  return avg;
}

async function accuracyOf(g: Graph): Promise<number> {
  const s = await createSession(g, { provider: 'cpu' });
  const all = await readBatch(test, Array.from({ length: test.size }, (_, i) => i));
  const out = await s.run({ input: new ort.Tensor('float32', all.images, [test.size, ...test.shape]) });
  await s.release();
  const logits = out.logits.data as Float32Array;
  let correct = 0;
  for (let i = 0; i < test.size; i++) {
    const row = Array.from(logits.subarray(i * 10, (i + 1) * 10));
    if (BigInt(row.indexOf(Math.max(...row))) === all.labels![i]) correct++;
  }
  return correct / test.size;
}

describe('weight averaging', () => {
  it('exports the moving average of every parameter and running statistic, while the steps follow the live weights exactly as without it', async () => {
    const a = artifacts();
    const start = new Map([...a.checkpoint.params, ...a.checkpoint.buffers]);
    const plain = await Trainer.create(options(a));
    const plainRun = await plain.run();
    const plainValues = plain.values();
    await plain.release();

    const live: Array<Map<string, TensorData>> = [];
    let t: Trainer | undefined = undefined;
    t = await Trainer.create(options(a, { average: { decay: 0.9 }, eval: test, onStep: () => live.push(t!.values()) }));
    const r = await t.run();
    const exported = t.exportValues();
    const g = t.inferenceGraph();
    await t.release();

    // averaging only reads the weights: the same losses, the same live weights, bit for bit
    expect(r.losses).toEqual(plainRun.losses);
    expect(sameBits(live.at(-1)!, plainValues)).toBe(true);
    expect(live).toHaveLength(30);
    // the buffers are averaged too (BatchNorm's running statistics)
    expect([...exported.keys()]).toEqual([...start.keys()]);
    expect([...exported.keys()]).toContain('bn1.running_var');
    const want = expectedAverage(start, live, 0.9);
    for (const [k, v] of exported) expect(hex(v)).toBe(hex({ ...v, data: want.get(k)! }));
    // and it is not the live weights
    expect(sameBits(exported, plainValues)).toBe(false);
    // the exported graph carries the average, and the final evaluation is of that graph
    for (const [k, v] of exported) expect(hex(g.initializers.get(k)!)).toBe(hex(v));
    expect(await accuracyOf(g)).toBeCloseTo(r.evals.at(-1)!.accuracy!, 10);
  });

  it('a resumed run continues its own average: the same as an uninterrupted run, bit for bit', async () => {
    const a = artifacts();
    const dir = mkdtempSync(join(tmpdir(), 's2s-average-'));
    const run = async (path: string, stopAtStep?: number) => {
      const t = await Trainer.create(options(a, { average: { decay: 0.95 }, checkpointEvery: 7, checkpointPath: join(path, 'ckpt'), resume: true }));
      await t.run({ stopAtStep });
      const v = t.exportValues();
      await t.release();
      return v;
    };
    const straight = await run(join(dir, 'straight'));
    await run(join(dir, 'broken'), 17); // the last checkpoint on disk is step 14
    const kept = loadCheckpoint(join(dir, 'broken', 'ckpt'));
    expect(kept.step).toBe(14);
    expect([...kept.average!.keys()]).toEqual([...straight.keys()]);
    expect(sameBits(await run(join(dir, 'broken')), straight)).toBe(true);
    expect(sameBits(loadCheckpoint(join(dir, 'broken', 'ckpt')).average!, straight)).toBe(true);
  });

  it('refuses a decay outside [0, 1) and a checkpoint that holds no average', async () => {
    const a = artifacts();
    await expect(Trainer.create(options(a, { average: { decay: 1 } }))).rejects.toThrow(/weight-average decay must be in \[0, 1\), got 1/);
    await expect(Trainer.create(options(a, { average: { decay: -0.1 } }))).rejects.toThrow(/got -0.1/);
    const path = join(mkdtempSync(join(tmpdir(), 's2s-average-')), 'ckpt');
    const t = await Trainer.create(options(a, { steps: 3, checkpointPath: path }));
    await t.run();
    await t.release();
    await expect(Trainer.create(options(a, { average: { decay: 0.9 }, checkpointPath: path, resume: true }))).rejects.toThrow(
      /checkpoint at step 3 has no weight average for 'fc1.weight': it was written by a run that did not average weights/,
    );
    expect(loadCheckpoint(path).average).toBeUndefined();
    // a file whose tensors name a group this build does not know is refused, not read as something else
    const bytes = readFileSync(path);
    const at = bytes.indexOf('"group":"param"');
    expect(at).toBeGreaterThan(0);
    bytes.write('"group":"pzzzz"', at, 'latin1'); // same length: offsets and checksum still hold
    writeFileSync(path, bytes);
    expect(() => loadCheckpoint(path)).toThrow(/tensor 'fc1.weight' is in an unknown group 'pzzzz'/);
  });
});
