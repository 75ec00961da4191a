/**
 * Memory of a training step by batch size, and the bytes a step moves
 * between host and device (not a test). For each batch size, a fresh process
 * builds the architecture's training artifacts, runs two fused steps (the
 * graph the Trainer runs, forward + backward + AdamW, in a TrainingSession,
 * one thread) and reports its peak RSS, and the RSS it had before the step
 * session existed (runtime, model and artifacts in JavaScript). The
 * difference is what the step needs on top: on a GPU that part lives in
 * device memory.
 *
 * Host↔device traffic per step is computed from the step graph's inputs and
 * outputs: onnxruntime-node feeds and fetches CPU tensors only (no IO binding
 * to device memory), so with the CUDA EP every input is copied to the device
 * and every fetched output back, every step.
 *
 *   npx tsx bench/training-memory.ts [--arch resnet50] [--batches 1,2,4,8] [--size 224] [--classes 1000]
 */
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { buildArchitecture, getArchitecture } from '../src/architectures/architectures';
import { buildArtifacts } from '../src/training/artifacts';
import { fuseTrainingStep } from '../src/training/fuse';
import { LEARNING_RATE, STEP } from '../src/training/optimizer';
import { TrainingSession } from '../src/training/session';
import { Rng } from '../src/util/random';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const archName = arg('arch', 'resnet50');
const arch = getArchitecture(archName);
const size = Number(arg('size', String(arch.defaults.height)));
const channels = Number(arg('channels', String(arch.defaults.channels)));
const classes = Number(arg('classes', String(arch.defaults.classes ?? 0)));
const GB = 1024 ** 3;

function artifacts() {
  const g = buildArchitecture(archName, { seed: 1, height: size, width: size, channels, classes: classes || undefined });
  return buildArtifacts(g, { requiresGrad: 'all', loss: { kind: arch.kind === 'autoencoder' ? 'mse' : 'cross-entropy' }, optimizer: { kind: 'adamw' } });
}

async function worker(batch: number): Promise<void> {
  const a = artifacts();
  const before = process.resourceUsage().maxRSS * 1024;
  const s = await TrainingSession.create(fuseTrainingStep(a.training, a.optimizer, a.info), { provider: 'cpu', intraOpThreads: 1 });
  const rng = new Rng(5);
  const feeds: Record<string, ort.Tensor> = {
    [a.info.imageInput]: new ort.Tensor('float32', Float32Array.from({ length: batch * channels * size * size }, () => rng.uniform()), [batch, channels, size, size]),
    [LEARNING_RATE]: new ort.Tensor('float32', Float32Array.of(1e-3), []),
    [STEP]: new ort.Tensor('int64', BigInt64Array.of(1n), []),
  };
  if (a.info.labelsInput) feeds[a.info.labelsInput] = new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(classes))), [batch]);
  for (const [n, t] of [...a.checkpoint.params, ...a.checkpoint.buffers, ...a.checkpoint.optimizerState]) feeds[n] = new ort.Tensor('float32', t.data as Float32Array, t.dims);
  let inBytes = 0;
  for (const t of Object.values(feeds)) inBytes += (t.data as Float32Array).byteLength;
  let outBytes = 0;
  const c0 = process.cpuUsage();
  for (let i = 0; i < 2; i++) {
    const out = await s.session.run(feeds);
    outBytes = Object.values(out).reduce((sum, t) => sum + (t.data as Float32Array).byteLength, 0);
  }
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ batch, beforeGb: before / GB, peakGb: (process.resourceUsage().maxRSS * 1024) / GB, inMb: inBytes / 1e6, outMb: outBytes / 1e6, cpuSPerStep: (c.user + c.system) / 2e6 }));
}

function main() {
  const w = arg('worker', '');
  if (w) return void worker(Number(w)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
  const rows = [];
  for (const b of arg('batches', '1,2,4,8').split(',').map(Number)) {
    const r = spawnSync(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2), '--worker', String(b)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new Error(`batch ${b}: ${r.stderr}`);
    const x = JSON.parse(line);
    rows.push({
      batch: b,
      'peak RSS GB': x.peakGb.toFixed(2),
      'before step session GB': x.beforeGb.toFixed(2),
      'step needs GB': (x.peakGb - x.beforeGb).toFixed(2),
      'host→device MB/step': x.inMb.toFixed(1),
      'device→host MB/step': x.outMb.toFixed(1),
      'CPU s/step': x.cpuSPerStep.toFixed(1),
    });
    console.log(rows[rows.length - 1]);
  }
  console.log(`${archName} ${size}×${size}×${channels}${classes ? `, ${classes} classes` : ''}: fused training step (forward, backward, AdamW), one thread, peak RSS over two steps; onnxruntime-node ${require('onnxruntime-node/package.json').version}`);
  console.table(rows);
}

main();
