/**
 * Where a training step's time goes (not a test): ONNX Runtime's own per-node
 * profile of the fused step graph the Trainer runs (one thread), summed per
 * op type and per node over the profiled steps (the first, warm-up step is
 * left out), plus the graph's node count.
 *
 *   npx tsx bench/training-profile.ts [--arch segnet-small] [--batch 64] [--steps 4] [--top 25] [--size 28] [--channels 1]
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { buildArchitecture, getArchitecture } from '../src/architectures/architectures';
import { encodeModel } from '../src/onnx/io';
import { buildArtifacts } from '../src/training/artifacts';
import { fuseTrainingStep } from '../src/training/fuse';
import { LEARNING_RATE, STEP, stateNames } from '../src/training/optimizer';
import { trainingSessionOptions } from '../src/training/session';
import { Rng } from '../src/util/random';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};

async function main() {
  const archName = arg('arch', 'segnet-small');
  const arch = getArchitecture(archName);
  const batch = Number(arg('batch', '64'));
  const steps = Number(arg('steps', '4'));
  const size = Number(arg('size', String(arch.defaults.height)));
  const channels = Number(arg('channels', String(arch.defaults.channels)));
  const g = buildArchitecture(archName, { seed: 1, height: size, width: size, channels, classes: arch.defaults.classes ? 10 : undefined });
  const a = buildArtifacts(g, { requiresGrad: 'all', loss: { kind: arch.kind === 'autoencoder' ? 'mse' : 'cross-entropy' }, optimizer: { kind: 'adamw' } });
  const step = fuseTrainingStep(a.training, a.optimizer, a.info);
  const session = await ort.InferenceSession.create(encodeModel(step), { ...trainingSessionOptions('cpu', 1), enableProfiling: true, profileFilePrefix: `/tmp/training-profile-${archName}` });
  const rng = new Rng(5);
  const per = channels * size * size;
  const feeds: Record<string, ort.Tensor> = { [a.info.imageInput]: new ort.Tensor('float32', Float32Array.from({ length: batch * per }, () => rng.uniform()), [batch, channels, size, size]) };
  if (a.info.labelsInput) feeds[a.info.labelsInput] = new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(10))), [batch]);
  for (const [n, t] of [...a.checkpoint.params, ...a.checkpoint.buffers, ...a.checkpoint.optimizerState]) feeds[n] = new ort.Tensor('float32', t.data as Float32Array, t.dims);
  feeds[LEARNING_RATE] = new ort.Tensor('float32', Float32Array.of(1e-3), []);
  feeds[STEP] = new ort.Tensor('int64', BigInt64Array.of(1n), []);
  void stateNames;
  for (let i = 0; i <= steps; i++) await session.run(feeds);
  session.endProfiling();
  const file = readdirSync('/tmp').filter((f) => f.startsWith(`training-profile-${archName}_`)).map((f) => `/tmp/${f}`)[0];
  const events = JSON.parse(readFileSync(file, 'utf8')) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
  rmSync(file, { force: true });
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const byOp = new Map<string, number>();
  const byNode = new Map<string, { op: string; us: number }>();
  // Node events of the first run are skipped: the warm-up allocates.
  let runIndex = -1;
  let total = 0;
  for (const e of events) {
    if (e.cat === 'Session' && e.name === 'SequentialExecutor::Execute') runIndex++;
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || runIndex < 1) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    const n = byNode.get(e.name) ?? { op, us: 0 };
    n.us += e.dur;
    byNode.set(e.name, n);
    total += e.dur;
  }
  const top = Number(arg('top', '25'));
  const ms = (us: number) => (us / 1000 / steps).toFixed(2);
  console.log(`${archName} ${size}×${size}×${channels} batch ${batch}: ${step.nodes.length} nodes in the step graph; model_run ${runs.slice(1).map((r) => (r.dur / 1000).toFixed(0)).join(', ')} ms; kernel time ${ms(total)} ms/step`);
  console.table([...byOp.entries()].sort((x, y) => y[1] - x[1]).map(([op, us]) => ({ op, 'ms/step': ms(us), share: `${((100 * us) / total).toFixed(1)} %`, nodes: [...byNode.values()].filter((n) => n.op === op).length })));
  console.table([...byNode.entries()].sort((x, y) => y[1].us - x[1].us).slice(0, top).map(([name, n]) => ({ node: name.replace(/_kernel_time$/, '').slice(0, 70), op: n.op, 'ms/step': ms(n.us) })));
  await session.release();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
