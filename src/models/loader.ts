import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { UserError } from '../util/errors';
import { FileRef, Manifest, parseManifest } from './manifest';

/** A model set whose manifest is valid and whose every file matched its sha256. */
export interface ModelSet {
  name: string;
  dir: string;
  manifest: Manifest;
  /** absolute path of each file named in the manifest, by key (classifier, s2snet, …) */
  paths: Record<string, string>;
}

export function sha256File(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => h.update(chunk))
      .on('error', fail)
      .on('end', () => ok(h.digest('hex')));
  });
}

export function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `no model set at ${dir} (manifest.json not found)` : `cannot read ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseManifest(json, path);
}

async function verifyFile(dir: string, key: string, ref: FileRef): Promise<string> {
  const root = resolve(dir);
  const path = resolve(root, ref.path);
  if (!path.startsWith(root + sep)) throw new UserError(`model set ${dir}: files.${key}.path '${ref.path}' leaves the model-set folder`);
  let actual: string;
  try {
    actual = await sha256File(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `model set ${dir}: files.${key} (${ref.path}) is missing` : `model set ${dir}: cannot read ${ref.path}: ${(e as Error).message}`);
  }
  if (actual !== ref.sha256) {
    throw new UserError(`model set ${dir}: ${ref.path} (files.${key}) has sha256 ${actual} but the manifest says ${ref.sha256}; refusing to serve a modified model`);
  }
  return path;
}

/**
 * Reads and checks a model set: manifest against the schema, then the sha256
 * of every listed file. Any mismatch is fatal and names the file, because a
 * swapped classifier or S2SNet silently changes what the service defends.
 */
export async function loadModelSet(dir: string): Promise<ModelSet> {
  const manifest = readManifest(dir);
  const paths: Record<string, string> = {};
  for (const [key, ref] of Object.entries(manifest.files)) {
    if (ref) paths[key] = await verifyFile(dir, key, ref);
  }
  return { name: manifest.name, dir: resolve(dir), manifest, paths };
}
