/**
 * Training against PyTorch (not a test). For each model, in one run:
 *
 *   ae         segnet-small autoencoder, 28×28 grey, batch 64: a training step (MSE, AdamW)
 *   vgg        vgg-small classifier, 28×28 grey, batch 64: a training step (cross-entropy, AdamW)
 *   segnet224  full SegNet, 224×224 RGB, batch 8: forward + backward (MSE), no update
 *   resnet50   ResNet-50, 224×224 RGB, 1000 classes, batch 8: forward + backward (cross-entropy)
 *
 * our time (the Trainer's fused step, or the training model's session for
 * forward + backward), our inference forward on the same batch, and — when
 * /usr/bin/python3 has torch — PyTorch's on the same architecture rebuilt from
 * our ONNX weights (bench/training-torch.py runs each ONNX node as the
 * matching torch function). Each side runs in its own process with one
 * thread; rounds are interleaved (one step of each per round) and the medians
 * of the timed rounds are printed, with each process's peak RSS and the
 * ratios. Time is the process's CPU time (user + system) by default, since the
 * machine is shared: with one thread it is what a step costs on a free core
 * (`--clock wall` for wall time). The first step's losses of both sides are
 * printed: they must agree, or the comparison is not of the same computation.
 *
 *   npx tsx bench/training-vs-torch.ts [--models ae,vgg,segnet224,resnet50] [--rounds 10] [--rounds224 4] [--clock cpu|wall]
 *
 * TORCH_PROFILE=1 prints torch's autograd profile of each step to stderr instead of timing it.
 */
import { ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import { buildArchitecture } from '../src/architectures/architectures';
import { DataType } from '../src/onnx/dtype';
import { Graph } from '../src/onnx/graph';
import { loadModel, saveModel } from '../src/onnx/io';
import { createSession } from '../src/runtime/session';
import { buildArtifacts, loadArtifacts, writeArtifacts } from '../src/training/artifacts';
import { arrayDataset } from '../src/training/dataset';
import { TrainingSession } from '../src/training/session';
import { Trainer } from '../src/training/trainer';
import { Rng } from '../src/util/random';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};

type Mode = 'step' | 'fwdbwd';
interface ModelCase {
  key: string;
  arch: string;
  geometry: { channels: number; height: number; width: number; classes?: number };
  batch: number;
  loss: 'mse' | 'cross-entropy';
  mode: Mode;
}

const CASES: ModelCase[] = [
  { key: 'ae', arch: 'segnet-small', geometry: { channels: 1, height: 28, width: 28 }, batch: 64, loss: 'mse', mode: 'step' },
  { key: 'vgg', arch: 'vgg-small', geometry: { channels: 1, height: 28, width: 28, classes: 10 }, batch: 64, loss: 'cross-entropy', mode: 'step' },
  { key: 'segnet224', arch: 'segnet', geometry: { channels: 3, height: 224, width: 224 }, batch: 8, loss: 'mse', mode: 'fwdbwd' },
  { key: 'resnet50', arch: 'resnet50', geometry: { channels: 3, height: 224, width: 224, classes: 1000 }, batch: 8, loss: 'cross-entropy', mode: 'fwdbwd' },
];
const LR = 1e-3;

interface Spec {
  mode: Mode | 'forward';
  batch: number;
  imageShape: number[];
  loss: ModelCase['loss'];
}

interface Reply {
  cpuMs: number;
  wallMs: number;
  loss?: number;
  maxRssKb?: number;
}

// ---------------------------------------------------------------- our worker

async function ourWorker(dir: string, mode: Spec['mode']): Promise<void> {
  const spec = JSON.parse(require('node:fs').readFileSync(join(dir, 'model.json'), 'utf8')) as Spec;
  const raw = require('node:fs').readFileSync(join(dir, 'batch.bin')) as Buffer;
  const per = spec.imageShape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + spec.batch * per * 4));
  const labels = spec.loss === 'cross-entropy' ? new BigInt64Array(raw.buffer.slice(raw.byteOffset + spec.batch * per * 4, raw.byteOffset + spec.batch * per * 4 + spec.batch * 8)) : undefined;
  let run: () => Promise<number | undefined>;
  if (mode === 'forward') {
    const s = await createSession(loadModel(join(dir, 'model.onnx')), { provider: 'cpu', intraOpThreads: 1 });
    const input = new ort.Tensor('float32', images, [spec.batch, ...spec.imageShape]);
    run = async () => {
      await s.session.run({ input });
      return undefined;
    };
  } else if (mode === 'step') {
    const trainer = await Trainer.create({ artifacts: join(dir, 'artifacts'), train: arrayDataset(images, spec.imageShape, labels), batchSize: spec.batch, steps: 1e9, schedule: { kind: 'constant', lr: LR }, seed: 1, provider: 'cpu', intraOpThreads: 1, progress: false });
    run = () => trainer.trainStep({ images, labels });
  } else {
    const a = loadArtifacts(join(dir, 'artifacts'));
    const s = await TrainingSession.create(a.training, { provider: 'cpu', intraOpThreads: 1 });
    const feeds: Record<string, ort.Tensor> = { [a.info.imageInput]: new ort.Tensor('float32', images, [spec.batch, ...spec.imageShape]) };
    if (a.info.labelsInput) feeds[a.info.labelsInput] = new ort.Tensor('int64', labels!, [spec.batch]);
    for (const [n, t] of [...a.checkpoint.params, ...a.checkpoint.buffers]) feeds[n] = new ort.Tensor('float32', t.data as Float32Array, t.dims);
    run = async () => {
      const out = await s.session.run(feeds);
      return (out[a.info.lossOutput].data as Float32Array)[0];
    };
  }
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line === 'step') {
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      const loss = await run();
      const c = process.cpuUsage(c0);
      process.stdout.write(JSON.stringify({ cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - w0, loss }) + '\n');
    } else if (line === 'quit') {
      process.stdout.write(JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS }) + '\n');
      process.exit(0);
    }
  }
}

// ---------------------------------------------------------------- the run

/** A worker process answering one JSON line per command. */
class Worker {
  private readonly lines: AsyncIterableIterator<string>;
  constructor(readonly label: string, private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    createInterface({ input: child.stderr }).on('line', (l) => process.stderr.write(`[${label}] ${l}\n`));
  }
  async ask(cmd: string): Promise<Reply> {
    this.child.stdin.write(cmd + '\n');
    const r = await this.lines.next();
    if (r.done) throw new Error(`${this.label} worker exited (code ${this.child.exitCode})`);
    return JSON.parse(r.value) as Reply;
  }
}

/**
 * torch's version and the BLAS it will load: Debian's torch calls the system
 * libblas.so.3 for its GEMM-based kernels (1×1 convolutions, linear layers),
 * and with only the reference BLAS installed those run tens of times slower
 * (install libopenblas0-pthread for a fair comparison).
 */
function torchAvailable(): string | undefined {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  let blas = 'unknown BLAS';
  try {
    blas = require('node:fs').realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3');
  } catch {
    // not a Debian multiarch layout
  }
  return `${r.stdout.trim()} (BLAS ${blas})`;
}

/** What the torch side needs: nodes with plain attributes, tensors as raw bytes, the batch. */
function exportForTorch(dir: string, g: Graph, c: ModelCase, trainable: string[], optimizer: object, images: Float32Array, labels: BigInt64Array | undefined): void {
  const chunks: Buffer[] = [];
  const tensors: Record<string, { dims: number[]; dtype: string; offset: number }> = {};
  let offset = 0;
  for (const [name, t] of g.initializers) {
    const dtype = t.dataType === DataType.FLOAT ? 'float32' : t.dataType === DataType.INT64 ? 'int64' : undefined;
    if (!dtype) throw new Error(`torch export: initializer ${name} has type ${t.dataType}`);
    const buf = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    tensors[name] = { dims: [...t.dims], dtype, offset };
    chunks.push(buf);
    offset += buf.length;
  }
  writeFileSync(join(dir, 'tensors.bin'), Buffer.concat(chunks));
  const nodes = g.nodes.map((n) => ({
    op: n.opType,
    inputs: n.inputs,
    outputs: n.outputs,
    attrs: Object.fromEntries(Object.entries(n.attrs).filter(([, a]) => a.kind !== 'tensor' && a.kind !== 'graph').map(([k, a]) => [k, a.value])),
  }));
  const spec = {
    mode: c.mode,
    batch: c.batch,
    imageShape: [c.geometry.channels, c.geometry.height, c.geometry.width],
    loss: c.loss,
    imageInput: g.inputs[0].name,
    lossOutput: g.outputs[0].name,
    params: trainable,
    optimizer,
    lr: LR,
    nodes,
    tensors,
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(spec));
  const parts = [Buffer.from(images.buffer, images.byteOffset, images.byteLength)];
  if (labels) parts.push(Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength));
  writeFileSync(join(dir, 'batch.bin'), Buffer.concat(parts));
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function benchCase(c: ModelCase, torchVersion: string | undefined, clock: 'cpu' | 'wall'): Promise<Record<string, string | number>> {
  const dir = mkdtempSync(join(tmpdir(), `bench-training-${c.key}-`));
  try {
    const g = buildArchitecture(c.arch, { ...c.geometry, seed: 1 });
    const artifacts = buildArtifacts(g, { requiresGrad: 'all', loss: { kind: c.loss }, optimizer: { kind: 'adamw' } });
    writeArtifacts(join(dir, 'artifacts'), artifacts);
    saveModel(g, join(dir, 'model.onnx'));
    const rng = new Rng(5);
    const per = c.geometry.channels * c.geometry.height * c.geometry.width;
    const images = Float32Array.from({ length: c.batch * per }, () => rng.uniform());
    const labels = c.loss === 'cross-entropy' ? BigInt64Array.from({ length: c.batch }, () => BigInt(rng.int(c.geometry.classes!))) : undefined;
    exportForTorch(dir, g, c, artifacts.info.params.map((p) => p.name), artifacts.info.optimizer, images, labels);

    const self = (mode: string) => spawn(process.execPath, [...process.execArgv, __filename, '--worker', dir, '--mode', mode], { stdio: 'pipe' });
    const workers: Worker[] = [new Worker('ours', self(c.mode)), new Worker('forward', self('forward'))];
    if (torchVersion) workers.push(new Worker('torch', spawn('/usr/bin/python3', [join(__dirname, 'training-torch.py'), dir], { stdio: 'pipe', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } })));
    const rounds = Number(c.geometry.height > 64 ? arg('rounds224', '4') : arg('rounds', '10'));
    const warm = c.geometry.height > 64 ? 1 : 3;
    const times: Record<string, number[]> = {};
    const firstLoss: Record<string, number | undefined> = {};
    for (let r = 0; r < warm + rounds; r++) {
      for (const w of workers) {
        const reply = await w.ask('step');
        if (r === 0) firstLoss[w.label] = reply.loss;
        if (r >= warm) (times[w.label] ??= []).push(clock === 'cpu' ? reply.cpuMs : reply.wallMs);
      }
    }
    const rss: Record<string, number> = {};
    for (const w of workers) rss[w.label] = (await w.ask('quit')).maxRssKb! / 1024 ** 2;
    const t = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    const row: Record<string, string | number> = {
      model: `${c.key} b${c.batch} ${c.mode === 'step' ? 'step' : 'fwd+bwd'}`,
      'ours ms': t.ours.toFixed(1),
      'ours/fwd': (t.ours / t.forward).toFixed(2),
      'ours GB': rss.ours.toFixed(2),
    };
    if (torchVersion) {
      Object.assign(row, {
        'torch ms': t.torch.toFixed(1),
        'torch/fwd': (t.torch / t.forward).toFixed(2),
        'torch GB': rss.torch.toFixed(2),
        'time ratio': (t.ours / t.torch).toFixed(2),
        'mem ratio': (rss.ours / rss.torch).toFixed(2),
        'loss ours': firstLoss.ours!.toPrecision(7),
        'loss torch': firstLoss.torch!.toPrecision(7),
      });
    }
    row['fwd ms'] = t.forward.toFixed(1);
    return row;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const worker = arg('worker', '');
  if (worker) return ourWorker(worker, arg('mode', 'step') as Spec['mode']);
  const clock = arg('clock', 'cpu') as 'cpu' | 'wall';
  const only = arg('models', CASES.map((c) => c.key).join(',')).split(',');
  const torchVersion = torchAvailable();
  const rows = [];
  for (const c of CASES.filter((x) => only.includes(x.key))) {
    rows.push(await benchCase(c, torchVersion, clock));
    console.log(rows[rows.length - 1]);
  }
  const load = require('node:os').loadavg()[0].toFixed(1);
  console.log(
    `one thread per process, ${clock === 'cpu' ? 'process CPU time (user + system)' : 'wall time'}, medians of interleaved rounds (28 px: ${arg('rounds', '10')} after 3 warm-up; 224 px: ${arg('rounds224', '4')} after 1), ` +
      `peak RSS per process (GB, includes the runtime: node + onnxruntime, python + torch); onnxruntime-node ${require('onnxruntime-node/package.json').version}, ` +
      `${torchVersion ? `torch ${torchVersion}` : 'torch not found (/usr/bin/python3 -c "import torch" failed): ours against our inference forward only'}, load average ${load}`,
  );
  console.table(rows);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
