import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors';
import { Batch, Dataset, checkIndices } from './dataset';
import { readIdx } from './idx';

/** Where Debian's `dataset-fashion-mnist` package puts the files. */
export const DEFAULT_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Label names in label-value order, as published with the data set (Xiao et al. 2017). */
export const FASHION_MNIST_LABELS: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

export type Split = 'train' | 'test';

const PREFIX: Record<Split, string> = { train: 'train', test: 't10k' };

export interface FashionMnistOptions {
  /** folder with the four IDX files; default $FASHION_MNIST_DIR or DEFAULT_FASHION_MNIST_DIR */
  dir?: string;
  split: Split;
}

export interface FashionMnist extends Dataset {
  labels: string[];
  /** raw 0..255 pixels, N×28×28, for tools that want bytes (exporting PNGs, cutting subsets) */
  pixels: Uint8Array;
  /** raw label values, one per image */
  labelValues: Uint8Array;
  files: { images: string; labels: string };
}

export function fashionMnistDir(dir?: string): string {
  return dir ?? process.env.FASHION_MNIST_DIR ?? DEFAULT_FASHION_MNIST_DIR;
}

/** Finds `<stem>.gz` or plain `<stem>`; the error says how to get the files. */
function locate(dir: string, stem: string): string {
  for (const name of [`${stem}.gz`, stem]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new UserError(
    `Fashion-MNIST file ${stem}(.gz) not found in ${dir}; install the Debian package dataset-fashion-mnist, ` +
      `or download the IDX files from https://github.com/zalandoresearch/fashion-mnist and pass their folder`,
  );
}

/** Loads one split into memory (the whole of Fashion-MNIST is 55 MB as bytes). */
export function loadFashionMnist(opts: FashionMnistOptions): FashionMnist {
  const dir = fashionMnistDir(opts.dir);
  const imagesPath = locate(dir, `${PREFIX[opts.split]}-images-idx3-ubyte`);
  const labelsPath = locate(dir, `${PREFIX[opts.split]}-labels-idx1-ubyte`);
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  if (images.dims.length !== 3) throw new UserError(`${imagesPath}: expected dims [N, H, W], got [${images.dims.join(', ')}]`);
  if (labels.dims.length !== 1) throw new UserError(`${labelsPath}: expected dims [N], got [${labels.dims.join(', ')}]`);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) throw new UserError(`${labelsPath}: ${labels.dims[0]} labels for ${n} images in ${imagesPath}`);
  const bad = labels.data.findIndex((v) => v >= FASHION_MNIST_LABELS.length);
  if (bad >= 0) throw new UserError(`${labelsPath}: label ${labels.data[bad]} at row ${bad} is outside 0..${FASHION_MNIST_LABELS.length - 1}`);
  const pixels = images.data;
  const labelValues = labels.data;
  const per = h * w;
  return {
    size: n,
    shape: [1, h, w],
    labels: [...FASHION_MNIST_LABELS],
    pixels,
    labelValues,
    files: { images: imagesPath, labels: labelsPath },
    get(indices: number[]): Batch {
      checkIndices(indices, n, `fashion-mnist ${opts.split}`);
      const out = new Float32Array(indices.length * per);
      const lab = new BigInt64Array(indices.length);
      indices.forEach((row, k) => {
        const src = row * per;
        const dst = k * per;
        for (let i = 0; i < per; i++) out[dst + i] = pixels[src + i] / 255;
        lab[k] = BigInt(labelValues[row]);
      });
      return { images: out, labels: lab };
    },
  };
}
