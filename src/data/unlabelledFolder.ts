import { UserError } from '../util/errors';
import { Dataset } from './dataset';
import { BatchDecoder, FolderReadOptions, FolderSummary, keepReadable, listImageFiles, readDirOrFail } from './imageFiles';

/**
 * Every JPEG, PNG and WebP below a folder, at any depth, without labels: the
 * unlabelled image set of stage 1 (autoencoder training). A labelled folder
 * works here too; its class structure is simply ignored.
 */
export interface UnlabelledFolderDataset extends Dataset {
  summary: FolderSummary;
  files: string[];
}

export async function openUnlabelledFolder(root: string, opts: FolderReadOptions): Promise<UnlabelledFolderDataset> {
  await readDirOrFail(root);
  const listed = await listImageFiles(root);
  const summary: FolderSummary = { root, images: 0, skipped: 0, skippedFiles: [], substituted: 0 };
  const keep = await keepReadable(listed, opts, summary);
  if (keep.length === 0) throw new UserError(`image folder ${root} has no readable JPEG, PNG or WebP images`);
  const files = keep.map((i) => listed[i]);
  summary.images = files.length;
  const decoder = new BatchDecoder(files, opts, summary);
  return {
    size: files.length,
    shape: [opts.channels, opts.height, opts.width],
    summary,
    files,
    get: (indices) => decoder.get(indices),
  };
}
