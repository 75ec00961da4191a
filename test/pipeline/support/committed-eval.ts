import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadFashionMnist } from '../../../src/data/fashionMnist';
import { Manifest } from '../../../src/models/manifest';
import { chain } from '../../../src/onnx/compose';
import { encodeModel, loadModel } from '../../../src/onnx/io';
import { Graph } from '../../../src/onnx/graph';

/**
 * An evaluation of a committed model set written from scratch (plain
 * onnxruntime sessions and arithmetic, not src/pipeline/evaluate.ts): top-1 of
 * f, f∘AE and f∘s, their reconstruction PSNR, and how many held-out clean
 * training images score above the detection threshold. Used by
 * committed-models.test.ts on a fixed subset and by record-committed-subset.ts,
 * which writes the subset's expected counts.
 */

/** The fixed subset: every 5th test image (2,000 of 10,000) and every 5th of the calibration images. */
export const SUBSET_STRIDE = 5;

export interface SubsetCounts {
  testImages: number;
  correct: { classifier: number; autoencoder: number; s2snet?: number };
  psnrDb: { autoencoder: number; s2snet?: number };
  calibrationImages: number;
  aboveThreshold: number;
}

async function session(source: string | Graph): Promise<ort.InferenceSession> {
  const model = typeof source === 'string' ? readFileSync(source) : encodeModel(source);
  return ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
}

function logSoftmax(z: Float32Array, i: number, k: number): number[] {
  const row = Array.from(z.subarray(i * k, (i + 1) * k));
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
  return row.map((v) => v - lse);
}

function kl(zc: Float32Array, zd: Float32Array, i: number, k: number): number {
  const p = logSoftmax(zc, i, k);
  const q = logSoftmax(zd, i, k);
  return p.reduce((a, lp, j) => a + Math.exp(lp) * (lp - q[j]), 0);
}

const argmax = (z: Float32Array, i: number, k: number) => {
  let b = 0;
  for (let j = 1; j < k; j++) if (z[i * k + j] > z[i * k + b]) b = j;
  return b;
};

function psnr(x: Float32Array, r: Float32Array, i: number, per: number): number {
  let se = 0;
  for (let j = i * per; j < (i + 1) * per; j++) se += (x[j] - r[j]) ** 2;
  return 10 * Math.log10(1 / Math.max(se / per, 1e-10));
}

/** Evaluates the set in `dir` on every `stride`-th test image and calibration image. */
export async function evaluateCommittedSet(dir: string, fashionDir: string, stride: number): Promise<SubsetCounts> {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const calib = (m.metrics as unknown as { detection: { calibrationImages: number } }).detection.calibrationImages;
  const s2s = Boolean(m.files.defended);
  const test = loadFashionMnist({ dir: fashionDir, split: 'test' });
  const f = await session(join(dir, 'classifier.onnx'));
  const ae = await session(join(dir, 'autoencoder.onnx'));
  const defended = s2s ? await session(join(dir, 'defended.onnx')) : undefined;
  const k = 10;
  const per = 784;
  const correct = { classifier: 0, autoencoder: 0, s2snet: 0 };
  const psnrSum = { autoencoder: 0, s2snet: 0 };
  const bs = 500;
  const testRows = Array.from({ length: Math.ceil(test.size / stride) }, (_, i) => i * stride);
  for (let start = 0; start < testRows.length; start += bs) {
    const rows = testRows.slice(start, start + bs);
    const b = await test.get(rows);
    const x = new ort.Tensor('float32', b.images, [rows.length, 1, 28, 28]);
    const zf = (await f.run({ input: x })).logits.data as Float32Array;
    const rAe = (await ae.run({ input: x })).reconstruction.data as Float32Array;
    const zAe = (await f.run({ input: new ort.Tensor('float32', rAe, x.dims) })).logits.data as Float32Array;
    const d = defended ? await defended.run({ input: x }) : undefined;
    for (let i = 0; i < rows.length; i++) {
      const y = Number(b.labels![i]);
      if (argmax(zf, i, k) === y) correct.classifier++;
      if (argmax(zAe, i, k) === y) correct.autoencoder++;
      psnrSum.autoencoder += psnr(b.images, rAe, i, per);
      if (d) {
        if (argmax(d.logits.data as Float32Array, i, k) === y) correct.s2snet++;
        psnrSum.s2snet += psnr(b.images, d.reconstruction.data as Float32Array, i, per);
      }
    }
  }

  // The threshold: KL(f(x) ‖ f(defence(x))) on the held-out training rows (the last `calib` of the split).
  const train = loadFashionMnist({ dir: fashionDir, split: 'train' });
  const first = train.size - calib;
  // Baseline sets flag on f(AE(x)); composed here with the project's composer, a path independent of the pipeline's.
  const viaDefence = defended ?? (await session(chain(loadModel(join(dir, 'autoencoder.onnx')), loadModel(join(dir, 'classifier.onnx')), 'reconstruction', 'input')));
  const calibRows = Array.from({ length: Math.ceil(calib / stride) }, (_, i) => first + i * stride);
  let above = 0;
  for (let start = 0; start < calibRows.length; start += bs) {
    const rows = calibRows.slice(start, start + bs);
    const x = new ort.Tensor('float32', (await train.get(rows)).images, [rows.length, 1, 28, 28]);
    const zc = (await f.run({ input: x })).logits.data as Float32Array;
    const zd = (await viaDefence.run({ input: x })).logits.data as Float32Array;
    for (let i = 0; i < rows.length; i++) if (kl(zc, zd, i, k) > m.detection.threshold) above++;
  }
  for (const s of new Set([f, ae, viaDefence, defended])) await s?.release();
  const n = testRows.length;
  const round3 = (v: number) => Math.round(v * 1000) / 1000;
  return {
    testImages: n,
    correct: s2s ? correct : { classifier: correct.classifier, autoencoder: correct.autoencoder },
    psnrDb: s2s ? { autoencoder: round3(psnrSum.autoencoder / n), s2snet: round3(psnrSum.s2snet / n) } : { autoencoder: round3(psnrSum.autoencoder / n) },
    calibrationImages: calibRows.length,
    aboveThreshold: above,
  };
}
