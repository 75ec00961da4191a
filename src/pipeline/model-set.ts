import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileRef, Manifest, parseManifest } from '../models/manifest';

/**
 * Writes models/<set>/manifest.json for files already in the folder: the
 * sha256 of every file is computed here from the bytes on disk, and the
 * result is validated against the schema the service loads it with, so a set
 * this writes is a set the service serves.
 */
export type ManifestDraft = Omit<Manifest, 'files'> & { files: Record<string, string> };

export function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function writeManifest(dir: string, draft: ManifestDraft): Manifest {
  const files: Record<string, FileRef> = {};
  for (const [key, path] of Object.entries(draft.files)) files[key] = { path, sha256: sha256Of(join(dir, path)) };
  const manifest = parseManifest({ ...draft, files }, join(dir, 'manifest.json'));
  const tmp = join(dir, '.manifest.json.tmp');
  writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n');
  renameSync(tmp, join(dir, 'manifest.json'));
  return manifest;
}
