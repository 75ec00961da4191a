import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { FASHION_MNIST_LABELS, loadFashionMnist } from '../../src/data/fashionMnist';
import { loadModelSet } from '../../src/models/loader';
import { Manifest } from '../../src/models/manifest';
import { encodeModel, loadModel } from '../../src/onnx/io';
import { chain } from '../../src/onnx/compose';
import { Graph } from '../../src/onnx/graph';
import { DEFAULT_RECIPE } from '../../src/pipeline/default-set';

/**
 * The committed model sets: they load (schema and sha256), they are what the
 * manifest says, the S2SNet's encoder is the autoencoder's byte for byte, and
 * — where the full Fashion-MNIST is installed (CI installs it) — the recorded
 * metrics and detection threshold are reproduced by an evaluation written
 * here from scratch (plain onnxruntime sessions and arithmetic, not
 * src/pipeline/evaluate.ts).
 */
const models = join(__dirname, '..', '..', 'models');
const sets = DEFAULT_RECIPE.classifiers.map((c) => ({ name: c.set, defence: c.defence }));
const fashionDir = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const haveData = existsSync(join(fashionDir, 't10k-images-idx3-ubyte.gz')) || existsSync(join(fashionDir, 't10k-images-idx3-ubyte'));

interface Recorded {
  testSet: { images: number };
  top1: Record<string, number>;
  psnrDb: Record<string, number>;
  detection: { calibrationImages: number };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const bytes = (g: Graph, name: string) => {
  const t = g.initializers.get(name)!;
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
};

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

describe.each(sets)('committed model set $name', ({ name, defence }) => {
  const dir = join(models, name);

  it('loads: valid manifest, every sha256 matches', async () => {
    const set = await loadModelSet(dir);
    expect(set.manifest.name).toBe(name);
    expect(set.manifest.labels).toEqual([...FASHION_MNIST_LABELS]);
    expect(set.manifest.input).toMatchObject({ channels: 1, height: 28, width: 28, layout: 'NCHW', range: [0, 1] });
    for (const ref of Object.values(set.manifest.files)) expect(sha256(join(dir, ref!.path))).toBe(ref!.sha256);
    const expected = defence === 's2snet' ? ['autoencoder', 'classifier', 'defended', 's2snet'] : ['autoencoder', 'classifier'];
    expect(Object.keys(set.manifest.files).sort()).toEqual(expected);
    expect(set.manifest.defence.chain).toEqual([{ stage: 'noise' }, { stage: defence }]);
    expect(set.manifest.detection.falsePositiveRate).toBe(0.05);
    expect(set.manifest.detection.threshold).toBeGreaterThan(0);
  });

  if (defence === 's2snet') {
    it('the S2SNet encoder is bit-identical to the autoencoder encoder; only decoder tensors differ', () => {
      const ae = loadModel(join(dir, 'autoencoder.onnx'));
      const s = loadModel(join(dir, 's2snet.onnx'));
      const enc = [...ae.initializers.keys()].filter((n) => n.startsWith('encoder.'));
      expect(enc.length).toBeGreaterThan(0);
      for (const n of enc) expect(bytes(s, n).equals(bytes(ae, n))).toBe(true);
      const changed = [...ae.initializers.keys()].filter((n) => !bytes(s, n).equals(bytes(ae, n)));
      expect(changed.length).toBeGreaterThan(0);
      expect(changed.every((n) => n.startsWith('decoder.'))).toBe(true);
    });

    it('defended.onnx carries the classifier and the S2SNet weights unchanged', () => {
      const d = loadModel(join(dir, 'defended.onnx'));
      const held = new Set([...d.initializers.values()].map((t) => createHash('sha256').update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex')));
      for (const file of ['classifier.onnx', 's2snet.onnx']) {
        const g = loadModel(join(dir, file));
        for (const n of g.initializers.keys()) expect(held.has(createHash('sha256').update(bytes(g, n)).digest('hex'))).toBe(true);
      }
    });
  }

  it('every file is small (the default set stays well under 20 MB)', () => {
    const total = readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
    expect(total).toBeLessThan(12 * 1024 * 1024);
  });

  (haveData ? it : it.skip)('the recorded metrics are reproduced on the full test set within 0.2 points, the threshold on the held-out images', async () => {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    const rec = m.metrics as unknown as Recorded;
    const test = loadFashionMnist({ dir: fashionDir, split: 'test' });
    expect(rec.testSet.images).toBe(test.size);
    const f = await session(join(dir, 'classifier.onnx'));
    const ae = await session(join(dir, 'autoencoder.onnx'));
    const defended = defence === 's2snet' ? await session(join(dir, 'defended.onnx')) : undefined;
    const k = 10;
    const per = 784;
    const hits = { classifier: 0, autoencoder: 0, s2snet: 0 };
    const psnrSum = { autoencoder: 0, s2snet: 0 };
    const bs = 1000;
    for (let start = 0; start < test.size; start += bs) {
      const rows = Array.from({ length: Math.min(bs, test.size - start) }, (_, i) => start + i);
      const b = await test.get(rows);
      const x = new ort.Tensor('float32', b.images, [rows.length, 1, 28, 28]);
      const zf = (await f.run({ input: x })).logits.data as Float32Array;
      const rAe = (await ae.run({ input: x })).reconstruction.data as Float32Array;
      const zAe = (await f.run({ input: new ort.Tensor('float32', rAe, x.dims) })).logits.data as Float32Array;
      const d = defended ? await defended.run({ input: x }) : undefined;
      for (let i = 0; i < rows.length; i++) {
        const y = Number(b.labels![i]);
        if (argmax(zf, i, k) === y) hits.classifier++;
        if (argmax(zAe, i, k) === y) hits.autoencoder++;
        psnrSum.autoencoder += psnr(b.images, rAe, i, per);
        if (d) {
          if (argmax(d.logits.data as Float32Array, i, k) === y) hits.s2snet++;
          psnrSum.s2snet += psnr(b.images, d.reconstruction.data as Float32Array, i, per);
        }
      }
    }
    const n = test.size;
    expect(Math.abs(100 * hits.classifier / n - 100 * rec.top1.classifier)).toBeLessThanOrEqual(0.2);
    expect(Math.abs(100 * hits.autoencoder / n - 100 * rec.top1.autoencoder)).toBeLessThanOrEqual(0.2);
    expect(Math.abs(psnrSum.autoencoder / n - rec.psnrDb.autoencoder)).toBeLessThanOrEqual(0.2);
    if (defended) {
      expect(Math.abs(100 * hits.s2snet / n - 100 * rec.top1.s2snet)).toBeLessThanOrEqual(0.2);
      expect(Math.abs(psnrSum.s2snet / n - rec.psnrDb.s2snet)).toBeLessThanOrEqual(0.2);
    }

    // The threshold: KL(f(x) ‖ f(defence(x))) on the held-out training rows; 5% of them lie above it.
    const train = loadFashionMnist({ dir: fashionDir, split: 'train' });
    const calib = rec.detection.calibrationImages;
    const first = train.size - calib;
    // Baseline sets flag on f(AE(x)); composed here with the project's composer, a path independent of the pipeline's.
    const viaDefence = defended ?? (await session(chain(loadModel(join(dir, 'autoencoder.onnx')), loadModel(join(dir, 'classifier.onnx')), 'reconstruction', 'input')));
    let above = 0;
    for (let start = first; start < train.size; start += bs) {
      const rows = Array.from({ length: Math.min(bs, train.size - start) }, (_, i) => start + i);
      const x = new ort.Tensor('float32', (await train.get(rows)).images, [rows.length, 1, 28, 28]);
      const zc = (await f.run({ input: x })).logits.data as Float32Array;
      const zd = (await viaDefence.run({ input: x })).logits.data as Float32Array;
      for (let i = 0; i < rows.length; i++) if (kl(zc, zd, i, k) > m.detection.threshold) above++;
    }
    // Nearest-rank 95th percentile: at most 5% above; float32-vs-float64 noise may move a score or two across.
    expect(above / calib).toBeLessThanOrEqual(0.05 + 2 / calib);
    expect(above / calib).toBeGreaterThanOrEqual(0.05 - 2 / calib);
    for (const s of new Set([f, ae, viaDefence, defended])) await s?.release();
  }, 900_000);
});

describe('the default set meets the targets of issue 4', () => {
  it('f ≥ 92% top-1; f∘s within 1 point of f; f∘AE below both (as recorded; the test above re-measures them)', () => {
    const m = JSON.parse(readFileSync(join(models, 'fashion-mnist', 'manifest.json'), 'utf8')) as Manifest;
    const t = (m.metrics as unknown as Recorded).top1;
    expect(t.classifier).toBeGreaterThanOrEqual(0.92);
    expect(Math.abs(t.classifier - t.s2snet)).toBeLessThanOrEqual(0.01);
    expect(t.autoencoder).toBeLessThan(t.s2snet);
  });
});
