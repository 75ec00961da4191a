import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main';
import { loadModelSet } from '../../src/models/loader';
import { GraphBuilder } from '../../src/onnx/builder';
import { loadModel, saveModel } from '../../src/onnx/io';
import { floatTensor } from '../../src/onnx/tensor';
import { differingInitializers } from '../../src/pipeline/frozen';
import { servedBase } from '../../src/certify/certifying-model';
import { createSession } from '../../src/runtime/session';
import { buildServingGraph } from '../../src/serving/graph';

/**
 * Every `s2s train` command end to end on the committed Fashion-MNIST subset,
 * a few steps each (plumbing, not accuracy): the files they write load, have
 * the right interface, and stage 2 changes the decoder and nothing else.
 */
const data = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');
const dir = mkdtempSync(join(tmpdir(), 's2s-train-'));
const p = (f: string) => join(dir, f);

async function s2s(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  try {
    const code = await main(['node', 's2s', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const quick = ['--data', data, '--holdout', '100', '--batch', '8', '--threads', '1'];

describe('s2s train (28×28 grey, committed subset)', () => {
  it('classifier: trains a few steps and writes input → logits', async () => {
    const r = await s2s('train', 'classifier', '--arch', 'resnet-small', '--steps', '3', ...quick, '--checkpoint-dir', p('ck-clf'), '--out', p('classifier.onnx'));
    expect(r.err).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out);
    expect(summary.steps).toBe(3);
    expect(summary.heldOut.images).toBe(100);
    const g = loadModel(p('classifier.onnx'));
    expect(g.inputs.map((v) => v.name)).toEqual(['input']);
    expect(g.outputs.map((v) => [v.name, v.shape])).toEqual([['logits', ['N', 10]]]);
    expect(existsSync(join(p('ck-clf'), 'checkpoint.last'))).toBe(true);
  });

  it('refuses to overwrite a checkpoint without --resume, resumes with it', async () => {
    const again = await s2s('train', 'classifier', '--arch', 'resnet-small', '--steps', '3', ...quick, '--checkpoint-dir', p('ck-clf'), '--out', p('c2.onnx'));
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/--resume/);
    const resumed = await s2s('train', 'classifier', '--arch', 'resnet-small', '--steps', '4', ...quick, '--checkpoint-dir', p('ck-clf'), '--resume', '--out', p('c2.onnx'));
    // A different step count is a different run: its fingerprint does not match.
    expect(resumed.code).toBe(2);
    expect(resumed.err).toMatch(/different run/);
    const same = await s2s('train', 'classifier', '--arch', 'resnet-small', '--steps', '3', ...quick, '--checkpoint-dir', p('ck-clf'), '--resume', '--out', p('c3.onnx'));
    expect(same.code).toBe(0);
    expect(same.err).toMatch(/resuming from step 3/);
    const a = loadModel(p('classifier.onnx'));
    const b = loadModel(p('c3.onnx'));
    expect(differingInitializers(a, b, '')).toEqual([]);
  });

  it('autoencoder: stage 1 trains without labels and writes input → reconstruction', async () => {
    const r = await s2s('train', 'autoencoder', '--arch', 'segnet-small', '--steps', '2', ...quick, '--out', p('autoencoder.onnx'));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).heldOut.psnrDb).toBeGreaterThan(0);
    const g = loadModel(p('autoencoder.onnx'));
    expect(g.outputs.map((v) => [v.name, v.shape])).toEqual([['reconstruction', ['N', 1, 28, 28]]]);
  });

  it('s2snet (ce): only decoder tensors change; defended.onnx is f ∘ s', async () => {
    const r = await s2s('train', 's2snet', '--classifier', p('classifier.onnx'), '--autoencoder', p('autoencoder.onnx'), '--steps', '2', ...quick, '--out', p('s2snet.onnx'), '--defended', p('defended.onnx'));
    expect(r.code).toBe(0);
    const ae = loadModel(p('autoencoder.onnx'));
    const s = loadModel(p('s2snet.onnx'));
    expect(differingInitializers(ae, s, 'encoder.')).toEqual([]);
    const changed = differingInitializers(ae, s, '');
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((n) => n.startsWith('decoder.'))).toBe(true);
    // Same graph otherwise: node for node.
    expect(s.nodes.map((n) => n.opType)).toEqual(ae.nodes.map((n) => n.opType));

    const f = loadModel(p('classifier.onnx'));
    const x = floatTensor([3, 1, 28, 28], Float32Array.from({ length: 3 * 784 }, (_, i) => ((i * 37) % 255) / 255));
    const recon = (await (await createSession(s)).run({ input: x })).reconstruction;
    const expected = (await (await createSession(f)).run({ input: recon })).logits.data as Float32Array;
    const got = (await (await createSession(p('defended.onnx'))).run({ input: x })).logits.data as Float32Array;
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 4));
  });

  it('s2snet (kl): label-free variant against f(x)', async () => {
    const r = await s2s('train', 's2snet', '--loss', 'kl', '--classifier', p('classifier.onnx'), '--autoencoder', p('autoencoder.onnx'), '--steps', '2', ...quick, '--out', p('s2snet-kl.onnx'));
    expect(r.code).toBe(0);
    const ae = loadModel(p('autoencoder.onnx'));
    const s = loadModel(p('s2snet-kl.onnx'));
    expect(differingInitializers(ae, s, 'encoder.')).toEqual([]);
    expect(differingInitializers(ae, s, 'decoder.').length).toBeGreaterThan(0);
  });

  it('s2snet accepts a foreign classifier: other input/output names, normalised input', async () => {
    const b = new GraphBuilder('foreign', { seed: 9 });
    let h = b.input('pixel_values', ['batch', 1, 28, 28]);
    h = b.relu(b.conv(h, { out: 4, kernel: 3, stride: 2 }));
    b.output(b.linear(b.flatten(b.maxPool(h, { kernel: 2 })), { out: 10 }), 'scores');
    saveModel(b.build(), p('foreign.onnx'));
    const r = await s2s('train', 's2snet', '--classifier', p('foreign.onnx'), '--mean', '0.286', '--std', '0.353', '--autoencoder', p('autoencoder.onnx'), '--steps', '1', ...quick, '--out', p('s2snet-foreign.onnx'), '--defended', p('defended-foreign.onnx'));
    expect(r.code).toBe(0);
    const d = loadModel(p('defended-foreign.onnx'));
    expect(d.inputs.map((v) => v.name)).toEqual(['input']);
    expect(d.outputs.map((v) => v.name)).toEqual(['logits', 'reconstruction']);
    expect(d.nodes.some((n) => n.opType === 'Sub') && d.nodes.some((n) => n.opType === 'Div')).toBe(true);
  });

  it('s2snet refuses an autoencoder without encoder./decoder. parameters', async () => {
    const b = new GraphBuilder('plain', { seed: 1 });
    b.output(b.sigmoid(b.conv(b.input('input', ['N', 1, 28, 28]), { out: 1, kernel: 3 })), 'reconstruction');
    saveModel(b.build(), p('plain-ae.onnx'));
    const r = await s2s('train', 's2snet', '--classifier', p('classifier.onnx'), '--autoencoder', p('plain-ae.onnx'), '--steps', '1', ...quick, '--out', p('never.onnx'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no 'decoder\.' parameters/);
    expect(existsSync(p('never.onnx'))).toBe(false);
  });

  it('set: assembles a model set the service loads and serves', async () => {
    const r = await s2s('train', 'set', '--classifier', p('classifier.onnx'), '--autoencoder', p('autoencoder.onnx'), '--s2snet', p('s2snet.onnx'), '--data', data, '--holdout', '100', '--out', p('models/tiny-fm'), '--set-version', '0.0.1-test');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out);
    expect(summary.metrics.testSet.images).toBe(500);
    expect(summary.metrics.detection.calibrationImages).toBe(100);
    // At most 5 of 100 calibration images exceed the 95th-percentile threshold.
    expect(summary.metrics.detection.flaggedCalibration).toBeLessThanOrEqual(0.05);
    const set = await loadModelSet(p('models/tiny-fm'));
    expect(set.manifest.name).toBe('tiny-fm');
    expect(Object.keys(set.paths).sort()).toEqual(['autoencoder', 'classifier', 'defended', 's2snet']);
    expect(set.manifest.detection.threshold).toBe(summary.threshold);
    const graphs = Object.fromEntries(Object.entries(set.paths).map(([k, path]) => [k, loadModel(path)]));
    const serving = buildServingGraph(set.manifest, graphs);
    // The default chain is noise → S2SNet, so the serving graph takes the noise as an input.
    expect(serving.inputs.map((v) => v.name).sort()).toEqual(['input', 'noise']);
    const out = await (await createSession(serving)).run({ input: floatTensor([2, 1, 28, 28]), noise: floatTensor([2, 1, 28, 28]) });
    expect(out.probs.dims).toEqual([2, 10]);
    expect(out.score.dims).toEqual([2]);
  });

  it('smoothing: trains the set’s stability decoder and adds it to the set; certification then smooths f ∘ d', async () => {
    const r = await s2s('train', 'smoothing', '--models', p('models/tiny-fm'), '--sigma', '0.5', '--pretrain-epochs', '0', '--no-train-encoder', '--steps', '2', '--batch', '8', '--data', data, '--holdout', '100', '--threads', '1', '--set-version', '0.0.2-test');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ version: '0.0.2-test', smoothing: { sigma: 0.5, denoiser: 'smoothing', clip: true }, steps: 2 });
    const set = await loadModelSet(p('models/tiny-fm'));
    expect(set.manifest.smoothing!.training).toMatchObject({ recipe: 'stability(gaussian:0.5)', loss: 'kl', noise: 'gaussian:0.5', batchSize: 8, steps: 2 });
    expect(servedBase(set.manifest)).toBe('f∘d');
    // Decoder only: the encoder is the set autoencoder's, bit for bit.
    const d = loadModel(set.paths.smoothing);
    const ae = loadModel(set.paths.autoencoder);
    expect(differingInitializers(ae, d, 'encoder.')).toEqual([]);
    expect(differingInitializers(ae, d, 'decoder.').length).toBeGreaterThan(0);

    const bad = await s2s('train', 'smoothing', '--models', p('models/tiny-fm'), '--sigma', '2', '--steps', '1');
    expect([bad.code, bad.err]).toEqual([2, 's2s: --sigma must be in (0, 1], got 2\n']);
  });

  it('smoothing: MSE denoising first (Salman et al.’s order) and the variant that trains the encoder, each recorded as trained', async () => {
    const args = ['train', 'smoothing', '--models', p('models/tiny-fm'), '--sigma', '0.5', '--steps', '2', '--batch', '8', '--data', data, '--holdout', '900', '--threads', '1'];
    const ae = loadModel((await loadModelSet(p('models/tiny-fm'))).paths.autoencoder!);
    const trainedWith = async (...extra: string[]) => {
      const r = await s2s(...args, ...extra);
      expect([r.code, r.err.match(/internal error/)]).toEqual([0, null]);
      const set = await loadModelSet(p('models/tiny-fm'));
      return { log: r.err, out: JSON.parse(r.out), training: set.manifest.smoothing!.training as Record<string, unknown>, d: loadModel(set.paths.smoothing!) };
    };

    const plain = await trainedWith('--pretrain-epochs', '0', '--no-train-encoder');
    expect(plain.training.pretraining).toBeUndefined();
    expect(plain.log).not.toMatch(/phase 1/);
    expect(plain.out.pretraining).toBeUndefined();

    const pre = await trainedWith('--pretrain-epochs', '1', '--no-train-encoder');
    expect(pre.log).toMatch(/phase 1: MSE denoising/);
    // --steps bounds each phase; the cost covers both.
    expect(pre.out).toMatchObject({ steps: 2, pretraining: { steps: 2 } });
    expect(pre.out.cpuSeconds).toBeGreaterThanOrEqual(pre.out.pretraining.cpuSeconds);
    expect(pre.training).toMatchObject({ recipe: 'stability(gaussian:0.5)', pretraining: { recipe: 'denoise(gaussian:0.5)', loss: 'mse', noise: 'gaussian:0.5', epochs: 1, steps: 2 }, trained: 'decoder.* only; encoder and classifier frozen', steps: 2 });
    // Both phases leave the encoder alone; the first one changed where the second started.
    expect(differingInitializers(ae, pre.d, 'encoder.')).toEqual([]);
    expect(differingInitializers(plain.d, pre.d, 'decoder.').length).toBeGreaterThan(0);

    // The default set's recipe trains the encoder: the default without a flag, as --train-encoder.
    const variant = await trainedWith('--pretrain-epochs', '1');
    expect(variant.training.trained).toBe('encoder.* and decoder.* (variant: encoder not frozen); classifier frozen');
    expect(differingInitializers(ae, variant.d, 'encoder.').length).toBeGreaterThan(0);
    const flagged = await trainedWith('--pretrain-epochs', '1', '--train-encoder');
    expect(flagged.training).toEqual(variant.training);
  });

  it('a wrong data folder is one clear error', async () => {
    const r = await s2s('train', 'classifier', '--data', p('nowhere'), '--steps', '1', '--out', p('x.onnx'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/does not exist/);
  });
});
