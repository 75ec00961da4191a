import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TensorData } from '../../src/onnx/tensor';
import { loadCheckpoint } from '../../src/training/checkpoint';

const runner = join(__dirname, 'support', 'ts-node.js');
const script = join(__dirname, 'support', 'train-child.ts');

/** Runs the training child; with killAtStep, SIGKILLs it as soon as it reports that step. */
function train(checkpoint: string, killAtStep?: number): Promise<{ code: number | null; signal: string | null; lastStep: number }> {
  return new Promise((resolve, reject) => {
    const args = [runner, script, checkpoint, ...(killAtStep === undefined ? [] : [String(killAtStep)])];
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
    const straight = join(mkdtempSync(join(tmpdir(), 's2s-kill-')), 'ckpt');
    const r = await train(straight);
    expect(r.lastStep).toBe(30);

    const killed = join(mkdtempSync(join(tmpdir(), 's2s-kill-')), 'ckpt');
    const k = await train(killed, 14);
    expect(k.signal).toBe('SIGKILL');
    const atKill = loadCheckpoint(killed);
    expect(k.lastStep).toBe(14);
    // Killed after step 14: the newest checkpoint on disk is step 12's, two steps are lost and redone.
    expect(atKill.step).toBe(12);
    const resumed = await train(killed);
    expect(resumed.lastStep).toBe(30);

    const a = loadCheckpoint(straight);
    const b = loadCheckpoint(killed);
    expect([b.step, b.epoch, b.batchInEpoch]).toEqual([a.step, a.epoch, a.batchInEpoch]);
    expect(b.rng).toEqual(a.rng);
    expect(dump(b.params)).toEqual(dump(a.params));
    expect(dump(b.optimizerState)).toEqual(dump(a.optimizerState));
    expect(dump(b.buffers)).toEqual(dump(a.buffers));
  });
});
