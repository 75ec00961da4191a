import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { GraphBuilder } from '../../src/onnx/builder';
import { loadModel, saveModel } from '../../src/onnx/io';
import { createSession } from '../../src/runtime/session';
import { FILES, readArtifactInfo } from '../../src/training/artifacts';
import { loadCheckpoint } from '../../src/training/checkpoint';
import { Dataset } from '../../src/training/dataset';
import { Trainer } from '../../src/training/trainer';

const root = join(__dirname, '..', '..');
const fixture = join(root, 'test', 'fixtures', 'fashion-mnist-small');

/** The CLI as users run it, in a child process (TypeScript sources compiled on the fly). */
const s2s = (...args: string[]) =>
  spawnSync(process.execPath, [join(__dirname, 'support', 'ts-node.js'), join(root, 'src', 'cli', 'main.ts'), ...args], { encoding: 'utf8', cwd: root });

function classifier(): string {
  const b = new GraphBuilder('small_classifier', { seed: 21 });
  const x = b.input('input', ['N', 1, 28, 28]);
  const h = b.relu(b.linear(b.flatten(b.maxPool(x, { kernel: 2 })), { out: 32, name: 'features.fc' }));
  b.output(b.linear(h, { out: 10, name: 'head' }), 'logits');
  const dir = mkdtempSync(join(tmpdir(), 's2s-art-'));
  saveModel(b.build(), join(dir, 'model.onnx'));
  return join(dir, 'model.onnx');
}

describe('s2s artifacts', () => {
  it('writes the four ORT-layout files; they load in ORT and one step lowers the loss', async () => {
    const model = classifier();
    const out = join(mkdtempSync(join(tmpdir(), 's2s-art-')), 'artifacts');
    const r = s2s('artifacts', '--model', model, '--requires-grad', 'all', '--frozen', 'features.*', '--loss', 'cross-entropy', '--optimizer', 'sgd', '--momentum', '0.5', '--out', out, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.trainable.names).toEqual(['head.weight', 'head.bias']);
    expect(summary.trainable.values).toBe(330);
    expect(summary.frozen.names).toEqual(['features.fc.weight', 'features.fc.bias']);
    expect(summary.optimizer).toEqual({ kind: 'sgd', momentum: 0.5, weightDecay: 0, nesterov: false });
    for (const f of Object.values(FILES)) expect(existsSync(join(out, f))).toBe(true);

    for (const f of [FILES.training, FILES.eval, FILES.optimizer]) {
      const s = await createSession(join(out, f), { provider: 'cpu' });
      await s.release();
    }
    const training = loadModel(join(out, FILES.training));
    expect(training.inputs.map((v) => v.name)).toEqual(['input', 'labels', 'head.weight', 'head.bias']);
    expect(readArtifactInfo(training).optimizer.kind).toBe('sgd');
    const ckpt = loadCheckpoint(join(out, FILES.checkpoint));
    expect(ckpt.step).toBe(0);
    expect([...ckpt.optimizerState.keys()]).toEqual(['head.weight.momentum', 'head.bias.momentum']);

    const data = loadFashionMnist({ dir: fixture, split: 'train' });
    const batch: Dataset = { size: 64, shape: data.shape, get: (i) => data.get(i) };
    const t = await Trainer.create({ artifacts: out, train: batch, batchSize: 64, steps: 1, schedule: { kind: 'constant', lr: 0.05 }, seed: 1, progress: false });
    const before = await t.evaluate(batch);
    const run = await t.run();
    const after = await t.evaluate(batch);
    await t.release();
    expect(run.steps).toBe(1);
    expect(after.loss).toBeLessThan(before.loss);
    // The trainer's checkpoint goes next to the artifacts; the initial checkpoint stays as it was.
    expect(loadCheckpoint(join(out, 'checkpoint.last')).step).toBe(1);
    expect(loadCheckpoint(join(out, FILES.checkpoint)).step).toBe(0);
  });

  it('explains bad requests in one line', () => {
    const model = classifier();
    const out = mkdtempSync(join(tmpdir(), 's2s-art-'));
    const r = s2s('artifacts', '--model', model, '--requires-grad', 'decoder.*', '--loss', 'cross-entropy', '--out', out);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^s2s: --requires-grad 'decoder\.\*' matches no parameter of 'small_classifier'/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const k = s2s('artifacts', '--model', model, '--requires-grad', 'all', '--loss', 'kl', '--out', out);
    expect(k.status).toBe(2);
    expect(k.stderr).toMatch(/--loss kl needs exactly one of --kl-reference NAME or --reference-model/);
  });
});
