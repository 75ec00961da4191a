import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildSegNet } from '../../src/architectures/segnet';
import { main } from '../../src/cli/main';
import { loadModelSet } from '../../src/models/loader';
import { loadModel, saveModel } from '../../src/onnx/io';
import { differingInitializers } from '../../src/pipeline/frozen';

/**
 * The ImageNet path, for shapes and plumbing only: 224×224 RGB images of
 * mixed sizes and formats in an image folder, a ResNet-50 classifier built by
 * the builder (torchvision layout, ImageNet normalisation supplied on the
 * command line), a small SegNet at 224×224, each command for one step at
 * batch 2.
 */
const dir = mkdtempSync(join(tmpdir(), 's2s-224-'));
const p = (f: string) => join(dir, f);
const folder = p('images');

async function s2s(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  try {
    return { code: await main(['node', 's2s', ...args]), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const common = ['--data', folder, '--holdout', '2', '--steps', '1', '--batch', '2', '--threads', '1'];
const imagenet = ['--mean', '0.485,0.456,0.406', '--std', '0.229,0.224,0.225'];

beforeAll(async () => {
  // Two classes, sizes around 224 on both sides, JPEG and PNG, so decoding resizes and crops.
  for (const [c, cls] of ['n01440764', 'n01443537'].entries()) {
    mkdirSync(join(folder, cls), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const w = 200 + 40 * i;
      const h = 260 - 30 * c;
      const px = Buffer.alloc(w * h * 3);
      for (let j = 0; j < px.length; j++) px[j] = (j * (5 + i + 3 * c)) % 251;
      const img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
      await (i % 2 ? img.png() : img.jpeg()).toFile(join(folder, cls, `${i}.${i % 2 ? 'png' : 'jpg'}`));
    }
  }
  saveModel(buildSegNet({ name: 'segnet-224-test', channels: 3, height: 224, width: 224, widths: [8, 16], convs: [1, 1], seed: 1 }), p('segnet-init.onnx'));
});

describe('s2s train at 224×224 RGB (ResNet-50 shaped classifier)', () => {
  it('classifier: resnet50 on an image folder, classes from the folder', async () => {
    const r = await s2s('train', 'classifier', '--arch', 'resnet50', ...common, '--out', p('resnet50.onnx'));
    expect(r.err).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).labels).toEqual(['n01440764', 'n01443537']);
    const g = loadModel(p('resnet50.onnx'));
    expect(g.inputs[0].shape).toEqual(['N', 3, 224, 224]);
    expect(g.outputs[0].shape).toEqual(['N', 2]);
  });

  it('autoencoder: a SegNet given as ONNX, trained on the same folder without labels', async () => {
    const r = await s2s('train', 'autoencoder', '--model', p('segnet-init.onnx'), ...common, '--out', p('autoencoder.onnx'));
    expect(r.code).toBe(0);
    expect(loadModel(p('autoencoder.onnx')).outputs[0].shape).toEqual(['N', 3, 224, 224]);
  });

  it('s2snet: decoder fine-tuned through the frozen ResNet-50 with its normalisation; a model set assembles', async () => {
    const r = await s2s('train', 's2snet', '--classifier', p('resnet50.onnx'), '--autoencoder', p('autoencoder.onnx'), ...imagenet, ...common, '--out', p('s2snet.onnx'));
    expect(r.code).toBe(0);
    const ae = loadModel(p('autoencoder.onnx'));
    const s = loadModel(p('s2snet.onnx'));
    expect(differingInitializers(ae, s, 'encoder.')).toEqual([]);
    expect(differingInitializers(ae, s, 'decoder.').length).toBeGreaterThan(0);

    const set = await s2s('train', 'set', '--classifier', p('resnet50.onnx'), '--autoencoder', p('autoencoder.onnx'), '--s2snet', p('s2snet.onnx'), ...imagenet, '--data', folder, '--test-data', folder, '--holdout', '2', '--limit', '2', '--out', p('models/imagenet-test'));
    expect(set.code).toBe(0);
    const m = (await loadModelSet(p('models/imagenet-test'))).manifest;
    expect(m.input).toMatchObject({ channels: 3, height: 224, width: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(m.labels).toEqual(['n01440764', 'n01443537']);
  });
});
