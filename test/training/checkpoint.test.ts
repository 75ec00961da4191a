import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType } from '../../src/onnx/dtype';
import { floatTensor, int64Tensor } from '../../src/onnx/tensor';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from '../../src/training/checkpoint';
import { Rng } from '../../src/util/random';

const tmp = () => mkdtempSync(join(tmpdir(), 's2s-ckpt-'));

function sample(): Checkpoint {
  const rng = new Rng(3);
  rng.normal(); // leaves a spare normal in the state, which must survive too
  const w = floatTensor([3, 5], Array.from({ length: 15 }, () => rng.normal()));
  return {
    step: 1234,
    epoch: 3,
    batchInEpoch: 17,
    rng: rng.state(),
    optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 },
    params: new Map([
      ['fc.weight', w],
      ['fc.bias', floatTensor([5], [1, 2, 3, 4, Number.MIN_VALUE])],
      ['scalar', floatTensor([], [Math.PI])],
    ]),
    optimizerState: new Map([
      ['fc.weight.exp_avg', floatTensor([3, 5], new Array(15).fill(-0))],
      ['fc.weight.exp_avg_sq', floatTensor([3, 5], new Array(15).fill(1e-30))],
    ]),
    buffers: new Map([
      ['bn.running_mean', floatTensor([7], [NaN, Infinity, -Infinity, 0, 1, 2, 3])],
      ['counter', int64Tensor([2], [BigInt('9007199254740993'), -1])],
    ]),
    metadata: { model: 'm.onnx', loss: 'cross-entropy' },
  };
}

const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

describe('checkpoint files', () => {
  it('round-trip every tensor bit for bit, with step, cursor, RNG state and metadata', () => {
    const dir = tmp();
    const c = sample();
    saveCheckpoint(join(dir, 'checkpoint'), c);
    const r = loadCheckpoint(join(dir, 'checkpoint'));
    expect({ ...r, params: 0, optimizerState: 0, buffers: 0 }).toEqual({ ...c, params: 0, optimizerState: 0, buffers: 0 });
    for (const group of ['params', 'optimizerState', 'buffers'] as const) {
      expect([...r[group].keys()]).toEqual([...c[group].keys()]);
      for (const [k, t] of c[group]) {
        const u = r[group].get(k)!;
        expect(u.dims).toEqual(t.dims);
        expect(u.dataType).toBe(t.dataType);
        expect(bits(u.data)).toBe(bits(t.data));
      }
    }
    expect(r.buffers.get('counter')!.dataType).toBe(DataType.INT64);
    // The restored RNG continues the same sequence.
    const a = new Rng(c.rng!);
    const b = new Rng(r.rng!);
    expect([a.normal(), a.uniform(), a.int(1000)]).toEqual([b.normal(), b.uniform(), b.int(1000)]);
  });

  it('refuses damaged files with a message naming the file', () => {
    const dir = tmp();
    const path = join(dir, 'checkpoint');
    saveCheckpoint(path, sample());
    const good = readFileSync(path);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3] ^= 0x40;
    writeFileSync(path, flipped);
    expect(() => loadCheckpoint(path)).toThrow(/checkpoint .* is not usable: data checksum mismatch/);
    writeFileSync(path, good.subarray(0, good.length - 64));
    expect(() => loadCheckpoint(path)).toThrow(/truncated/);
    writeFileSync(path, 'PK\x03\x04 not a checkpoint at all');
    expect(() => loadCheckpoint(path)).toThrow(/wrong magic/);
    expect(() => loadCheckpoint(join(dir, 'missing'))).toThrow(/checkpoint not found/);
  });

  it('a failed save leaves the previous checkpoint and no temporary file', () => {
    const dir = tmp();
    const path = join(dir, 'checkpoint');
    saveCheckpoint(path, sample());
    const before = readFileSync(path);
    const broken = sample();
    // A tensor whose data does not match its dims makes the writer throw half-way.
    broken.buffers.set('bad', { dataType: DataType.FLOAT, dims: [4], data: new Float32Array(3) });
    expect(() => saveCheckpoint(path, broken)).toThrow(/bad/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['checkpoint']);
  });

  it('a process killed while saving leaves a complete checkpoint (old or new, never a mix)', async () => {
    const dir = tmp();
    const path = join(dir, 'checkpoint');
    const runner = join(__dirname, 'support', 'ts-node.js');
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, [runner, join(__dirname, 'support', 'checkpoint-writer.ts'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      // Let it overwrite a few times, then kill it without warning.
      await new Promise((r) => setTimeout(r, 150 + 97 * round));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const c = loadCheckpoint(path);
      const k = c.step;
      expect([1, 2]).toContain(k);
      expect(c.batchInEpoch).toBe(k);
      expect(c.metadata.version).toBe(String(k));
      const w = c.params.get('w')!.data as Float32Array;
      const m = c.optimizerState.get('w.momentum')!.data as Float32Array;
      expect(w.every((v) => v === k)).toBe(true);
      expect(m.every((v) => v === k)).toBe(true);
    }
    // The next save clears the temporary files the killed writers left behind.
    saveCheckpoint(path, sample());
    expect(readdirSync(dir)).toEqual(['checkpoint']);
  });
});
