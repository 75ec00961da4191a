import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/io';
import type { Manifest } from '../../src/models/manifest';

/**
 * A small model set built with the GraphBuilder (random weights) and written
 * with a real manifest and real sha256s, so the service can be tested end to
 * end before the trained default set exists.
 */
export interface TinySetOptions {
  name?: string;
  channels?: 1 | 3;
  size?: number;
  classes?: number;
  /** conv width; larger makes each run slower (the shutdown test wants work in flight) */
  width?: number;
  seed?: number;
  threshold?: number;
  noise?: Partial<Manifest['noise']>;
  chain?: Manifest['defence']['chain'];
  mean?: number[];
  std?: number[];
}

export interface TinySet {
  modelsDir: string;
  dir: string;
  manifest: Manifest;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

export function writeTinySet(opts: TinySetOptions = {}, modelsDir = mkdtempSync(join(tmpdir(), 's2s-models-'))): TinySet {
  const name = opts.name ?? 'tiny';
  const c = opts.channels ?? 1;
  const s = opts.size ?? 28;
  const k = opts.classes ?? 10;
  const w = opts.width ?? 4;
  const seed = opts.seed ?? 1;
  const dir = join(modelsDir, name);
  mkdirSync(dir, { recursive: true });

  const f = new GraphBuilder('classifier', { seed });
  let x = f.input('input', ['N', c, s, s]);
  x = f.relu(f.conv(x, { out: w, kernel: 3 }));
  x = f.maxPool(x, { kernel: 2 });
  x = f.relu(f.conv(x, { out: w * 2, kernel: 3 }));
  x = f.flatten(f.globalAvgPool(x));
  f.output(f.linear(x, { out: k, init: 'glorot' }), 'logits');
  saveModel(f.build(), join(dir, 'classifier.onnx'));

  const ae = new GraphBuilder('s2snet', { seed: seed + 1 });
  let y = ae.input('input', ['N', c, s, s]);
  y = ae.relu(ae.conv(y, { out: w, kernel: 3 }));
  y = ae.sigmoid(ae.conv(y, { out: c, kernel: 3, init: 'glorot' }));
  ae.output(y, 'reconstruction');
  saveModel(ae.build(), join(dir, 's2snet.onnx'));

  const manifest: Manifest = {
    schemaVersion: 1,
    name,
    version: '0.0.1-test',
    description: 'random weights, for tests',
    input: { channels: c, height: s, width: s, layout: 'NCHW', range: [0, 1], mean: opts.mean ?? [0.5], std: opts.std ?? [0.25] },
    labels: Array.from({ length: k }, (_, i) => `class-${i}`),
    files: {
      classifier: { path: 'classifier.onnx', sha256: sha256(join(dir, 'classifier.onnx')) },
      s2snet: { path: 's2snet.onnx', sha256: sha256(join(dir, 's2snet.onnx')) },
    },
    defence: { chain: opts.chain ?? [{ stage: 'noise' }, { stage: 's2snet' }] },
    noise: { kind: 'gaussian', sigma: 0, maxSigma: 0.1, ...opts.noise },
    detection: { threshold: opts.threshold ?? 1e6, falsePositiveRate: 0.05, calibration: 'none (test set)' },
    metrics: {},
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return { modelsDir, dir, manifest };
}
