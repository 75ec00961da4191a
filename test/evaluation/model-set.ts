import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/io';
import { writeManifest } from '../../src/pipeline/model-set';

/**
 * A small model set for evaluation tests: f, s and AE for 1×28×28 images,
 * built with the GraphBuilder from seeds (no training), small enough that a
 * whole evaluation of a few dozen images takes seconds. The S2SNet and the
 * AE are one-hidden-layer MLP autoencoders with a sigmoid output, so their
 * reconstructions are images in [0, 1] like the real ones.
 */
export const FASHION_SMALL = join(__dirname, '..', 'fixtures', 'fashion-mnist-small');

function autoencoder(name: string, seed: number, hidden: number) {
  const g = new GraphBuilder(name, { seed });
  const x = g.input('input', ['N', 1, 28, 28]);
  const h = g.relu(g.linear(g.flatten(x), { out: hidden }));
  const y = g.sigmoid(g.linear(h, { out: 784, init: 'glorot' }));
  g.output(g.reshape(y, [-1, 1, 28, 28]), 'reconstruction');
  return g.build();
}

export function writeEvalSet(opts: { threshold?: number; seed?: number } = {}, root = mkdtempSync(join(tmpdir(), 's2s-eval-set-'))): string {
  const dir = join(root, 'tiny');
  mkdirSync(dir, { recursive: true });
  const seed = opts.seed ?? 1;
  const f = new GraphBuilder('classifier', { seed });
  const x = f.input('input', ['N', 1, 28, 28]);
  const h = f.relu(f.linear(f.flatten(x), { out: 32 }));
  f.output(f.linear(h, { out: 10, init: 'glorot' }), 'logits');
  saveModel(f.build(), join(dir, 'classifier.onnx'));
  saveModel(autoencoder('s2snet', seed + 1, 48), join(dir, 's2snet.onnx'));
  saveModel(autoencoder('autoencoder', seed + 2, 48), join(dir, 'autoencoder.onnx'));
  writeManifest(dir, {
    schemaVersion: 1,
    name: 'tiny',
    version: '0.0.1-test',
    description: 'random weights, for evaluation tests',
    input: { channels: 1, height: 28, width: 28, layout: 'NCHW', range: [0, 1], mean: [0.3], std: [0.35] },
    labels: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    files: { classifier: 'classifier.onnx', s2snet: 's2snet.onnx', autoencoder: 'autoencoder.onnx' },
    defence: { chain: [{ stage: 's2snet' }] },
    noise: { kind: 'gaussian', sigma: 0, maxSigma: 0.2 },
    detection: { threshold: opts.threshold ?? 0.02, falsePositiveRate: 0.05, calibration: 'none (test set)' },
  });
  return dir;
}
