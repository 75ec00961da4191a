import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Dataset } from '../data/dataset';
import { FASHION_MNIST_LABELS, Split, fashionMnistDir, loadFashionMnist } from '../data/fashionMnist';
import { openImageFolder } from '../data/imageFolder';
import { FolderSummary } from '../data/imageFiles';
import { openUnlabelledFolder } from '../data/unlabelledFolder';
import { UserError } from '../util/errors';

/**
 * What `--data` may name: a folder holding the Fashion-MNIST IDX files (the
 * default: $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist), or an
 * image folder — one subfolder per class for labelled stages, any images for
 * stage 1 — decoded to the model's geometry (224×224 RGB for ImageNet-style
 * models). For image folders the test split is a separate folder (`--test-data`).
 */
export interface DataSource {
  dataset: Dataset;
  /** label names; absent for unlabelled data */
  labels?: string[];
  /** what to write in logs and manifests */
  description: string;
  summary?: FolderSummary;
}

export interface Geometry {
  channels: 1 | 3;
  height: number;
  width: number;
}

export function isFashionMnistDir(dir: string): boolean {
  return ['train-images-idx3-ubyte', 't10k-images-idx3-ubyte'].some((s) => existsSync(join(dir, `${s}.gz`)) || existsSync(join(dir, s)));
}

function checkFashionGeometry(geo: Geometry | undefined, dir: string): void {
  if (geo && (geo.channels !== 1 || geo.height !== 28 || geo.width !== 28)) {
    throw new UserError(`${dir} holds Fashion-MNIST (1×28×28) but the model takes ${geo.channels}×${geo.height}×${geo.width} images; pass an image folder with --data`);
  }
}

/**
 * Opens training or test data. `labelled: false` (stage 1) reads any image
 * folder without looking at its class structure.
 */
export async function openData(path: string | undefined, opts: { split: Split; labelled: boolean; geometry?: Geometry; onProgress?: (done: number, total: number) => void }): Promise<DataSource> {
  const dir = fashionMnistDir(path);
  if (!existsSync(dir)) {
    throw new UserError(
      path === undefined
        ? `Fashion-MNIST not found at ${dir}; install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), set FASHION_MNIST_DIR, or pass --data`
        : `data folder ${dir} does not exist`,
    );
  }
  if (!statSync(dir).isDirectory()) throw new UserError(`--data ${dir} is not a folder`);
  if (isFashionMnistDir(dir)) {
    checkFashionGeometry(opts.geometry, dir);
    const ds = loadFashionMnist({ dir, split: opts.split });
    return { dataset: ds, labels: [...FASHION_MNIST_LABELS], description: `Fashion-MNIST ${opts.split} (${ds.size} images, ${dir})` };
  }
  if (!opts.geometry) throw new UserError(`${dir} is an image folder; its images need a target geometry (the model's input)`);
  const read = { ...opts.geometry, onProgress: opts.onProgress };
  if (opts.labelled) {
    const ds = await openImageFolder(dir, read);
    return { dataset: ds, labels: ds.labels, summary: ds.summary, description: `image folder ${dir} (${ds.size} images, ${ds.labels.length} classes, ${ds.summary.skipped} unreadable skipped)` };
  }
  const ds = await openUnlabelledFolder(dir, read);
  return { dataset: ds, summary: ds.summary, description: `image folder ${dir} (${ds.size} images, ${ds.summary.skipped} unreadable skipped)` };
}
