import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder';
import { TensorData } from '../../src/onnx/tensor';
import { buildArtifacts, writeArtifacts } from '../../src/training/artifacts';
import { loadCheckpoint } from '../../src/training/checkpoint';

const runner = join(__dirname, 'support', 'ts-node.js');
const script = join(__dirname, 'support', 'train-child.ts');

/** A folder with the same artifacts for every run: an MLP with BatchNorm, AdamW. */
function artifactsDir(): string {
  const b = new GraphBuilder('mlp', { seed: 12 });
  let h = b.linear(b.flatten(b.input('input', ['N', 1, 28, 28])), { out: 24, name: 'fc1' });
  h = b.relu(b.batchNorm(h, { name: 'bn1' }));
  b.output(b.linear(h, { out: 10, name: 'fc2' }), 'logits');
  const dir = mkdtempSync(join(tmpdir(), 's2s-kill-'));
  writeArtifacts(dir, buildArtifacts(b.build(), { requiresGrad: 'all', loss: { kind: 'cross-entropy' }, optimizer: { kind: 'adamw' } }));
  return dir;
}

/** Runs the training child on an artifacts folder; with killAtStep, SIGKILLs it as soon as it reports that step. */
function train(dir: string, killAtStep?: number): Promise<{ code: number | null; signal: string | null; lastStep: number }> {
  return new Promise((resolve, reject) => {
    const args = [runner, script, dir, ...(killAtStep === undefined ? [] : [String(killAtStep)])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let lastStep = 0;
    let err = '';
    let buf = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        const m = /^step (\d+)$/.exec(l);
        if (!m) continue;
        lastStep = Number(m[1]);
        if (killAtStep !== undefined && lastStep >= killAtStep) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code && code !== 0 ? reject(new Error(err)) : resolve({ code, signal, lastStep })));
  });
}

const hex = (t: TensorData) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex');
const dump = (m: Map<string, TensorData>) => [...m].map(([k, t]) => `${k}:${hex(t)}`);

describe('kill and resume', () => {
  it('a training process killed with SIGKILL and restarted ends bit-identical to an uninterrupted one', async () => {
    const straight = artifactsDir();
    const r = await train(straight);
    expect(r.lastStep).toBe(30);

    const killed = artifactsDir();
    const k = await train(killed, 14);
    expect(k.signal).toBe('SIGKILL');
    const atKill = loadCheckpoint(join(killed, 'checkpoint.last'));
    expect(k.lastStep).toBe(14);
    // Killed after step 14: the newest checkpoint on disk is step 12's, two steps are lost and redone.
    expect(atKill.step).toBe(12);
    const resumed = await train(killed);
    expect(resumed.lastStep).toBe(30);

    const a = loadCheckpoint(join(straight, 'checkpoint.last'));
    const b = loadCheckpoint(join(killed, 'checkpoint.last'));
    expect([b.step, b.epoch, b.batchInEpoch]).toEqual([a.step, a.epoch, a.batchInEpoch]);
    expect(b.rng).toEqual(a.rng);
    expect(dump(b.params)).toEqual(dump(a.params));
    expect(dump(b.optimizerState)).toEqual(dump(a.optimizerState));
    expect(dump(b.buffers)).toEqual(dump(a.buffers));
  });
});
