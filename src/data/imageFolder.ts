import { join } from 'node:path';
import { UserError } from '../util/errors';
import { Dataset } from './dataset';
import { BatchDecoder, FolderReadOptions, FolderSummary, byteOrder, keepReadable, listImageFiles, readDirOrFail } from './imageFiles';

/**
 * An ImageNet-style labelled folder: one subfolder per class (any depth of
 * images below it), class index = position of the subfolder name in byte
 * order — the torchvision ImageFolder convention, so label indices agree with
 * models trained there. Images are decoded on demand, one batch at a time.
 */
export interface ImageFolderDataset extends Dataset {
  labels: string[];
  summary: FolderSummary;
  /** readable files, in dataset order */
  files: string[];
  /** class index of every file */
  classOf: Int32Array;
}

export async function openImageFolder(root: string, opts: FolderReadOptions): Promise<ImageFolderDataset> {
  const entries = await readDirOrFail(root);
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byteOrder);
  if (classes.length === 0) throw new UserError(`image folder ${root} has no class subfolders (expected ${root}/<class>/<image>)`);

  const listed: string[] = [];
  const listedClass: number[] = [];
  for (const [c, name] of classes.entries()) {
    for (const f of await listImageFiles(join(root, name))) {
      listed.push(f);
      listedClass.push(c);
    }
  }
  const summary: FolderSummary = { root, images: 0, classes: classes.length, skipped: 0, skippedFiles: [], substituted: 0 };
  const keep = await keepReadable(listed, opts, summary);
  if (keep.length === 0) throw new UserError(`image folder ${root} has no readable JPEG, PNG or WebP images`);
  const files = keep.map((i) => listed[i]);
  const classOf = Int32Array.from(keep, (i) => listedClass[i]);
  summary.images = files.length;

  const decoder = new BatchDecoder(files, opts, summary, (row) => classOf[row]);
  return {
    size: files.length,
    shape: [opts.channels, opts.height, opts.width],
    labels: classes,
    summary,
    files,
    classOf,
    get: (indices) => decoder.get(indices),
  };
}
