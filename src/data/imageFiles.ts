import { open, readFile, readdir } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import sharp from 'sharp';
import { ResizeFit } from '../models/manifest';
import { decodeImage, sniffFormat } from '../serving/image';
import { UserError } from '../util/errors';
import { Batch, checkIndices } from './dataset';

/**
 * The part both folder readers share: listing image files, weeding out the
 * unreadable ones, and decoding batches with the same sharp pipeline the
 * service uses (so a model is trained on exactly what it will be served).
 */

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

export interface FolderGeometry {
  channels: 1 | 3;
  height: number;
  width: number;
  /** how other sizes reach height × width; default cover (scale the short side, centre-crop) */
  resize?: ResizeFit;
}

export interface FolderReadOptions extends FolderGeometry {
  /**
   * When to find unreadable files: 'header' (default) sniffs and parses every
   * header when the folder is opened — cheap, catches empty, foreign and
   * mangled files; 'decode' fully decodes every file up front (small sets);
   * 'none' trusts the listing. Whatever slips through is caught at `get`.
   */
  check?: 'none' | 'header' | 'decode';
  /** largest accepted image, in pixels (guards against decompression bombs) */
  maxPixels?: number;
  /** parallel file checks while opening */
  concurrency?: number;
  /** called while checking, e.g. to drive a progress bar */
  onProgress?: (done: number, total: number) => void;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

/** What a reader found; `skipped` keeps growing if decoding fails during an epoch. */
export interface FolderSummary {
  root: string;
  /** readable files offered by the dataset */
  images: number;
  classes?: number;
  /** files with an image extension that could not be read */
  skipped: number;
  /** the first few skipped files and why */
  skippedFiles: SkippedFile[];
  /** rows served by a substitute because their file failed to decode during `get` */
  substituted: number;
}

const KEEP_SKIPPED = 20;
const SHARP_DEFAULT_PIXEL_LIMIT = 0x3fff * 0x3fff;

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

/** Image files under `dir`, recursively, in byte order of their paths (stable across machines). */
export async function listImageFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if ((e.isFile() || e.isSymbolicLink()) && isImageFile(e.name)) found.push(p);
    }
  };
  await walk(dir);
  return found.sort(byteOrder);
}

export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function readDirOrFail(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `image folder not found: ${dir}` : `cannot read image folder ${dir}: ${code ?? (e as Error).message}`);
  }
}

export function recordSkip(summary: FolderSummary, path: string, reason: string): void {
  summary.skipped++;
  if (summary.skippedFiles.length < KEEP_SKIPPED) summary.skippedFiles.push({ path: relative(summary.root, path) || path, reason });
}

async function checkHeader(path: string, maxPixels: number): Promise<string | undefined> {
  const head = Buffer.alloc(16);
  let n: number;
  try {
    const fh = await open(path, 'r');
    try {
      n = (await fh.read(head, 0, head.length, 0)).bytesRead;
    } finally {
      await fh.close();
    }
  } catch (e) {
    return `unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  if (n === 0) return 'empty file';
  const format = sniffFormat(head.subarray(0, n));
  if (format !== 'jpeg' && format !== 'png' && format !== 'webp') return format ? `${format} is not an accepted format` : 'not a JPEG, PNG or WebP image';
  try {
    const meta = await sharp(path, { limitInputPixels: maxPixels }).metadata();
    if (!meta.width || !meta.height) return 'no pixels';
    if (meta.width * meta.height > maxPixels) return `${meta.width}×${meta.height} exceeds the pixel limit`;
  } catch (e) {
    return firstLine(e);
  }
  return undefined;
}

function firstLine(e: unknown): string {
  return ((e as Error).message ?? String(e)).split('\n')[0].slice(0, 200);
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Returns the indices of `files` that pass the requested check; the others are recorded as skipped. */
export async function keepReadable(files: readonly string[], opts: FolderReadOptions, summary: FolderSummary): Promise<number[]> {
  const check = opts.check ?? 'header';
  if (check === 'none') return files.map((_, i) => i);
  const maxPixels = opts.maxPixels ?? SHARP_DEFAULT_PIXEL_LIMIT;
  let done = 0;
  const reasons = await mapLimit(files, opts.concurrency ?? 16, async (f) => {
    let reason = await checkHeader(f, maxPixels);
    if (!reason && check === 'decode') reason = await decodeFile(f, opts, maxPixels).then(() => undefined, firstLine);
    opts.onProgress?.(++done, files.length);
    return reason;
  });
  const keep: number[] = [];
  reasons.forEach((r, i) => (r ? recordSkip(summary, files[i], r) : keep.push(i)));
  return keep;
}

async function decodeFile(path: string, geo: FolderReadOptions, maxPixels: number, out?: Float32Array, offset = 0): Promise<Float32Array> {
  const bytes = await readFile(path);
  return decodeImage(bytes, { channels: geo.channels, height: geo.height, width: geo.width, resize: geo.resize ?? 'cover' }, maxPixels, path, out, offset);
}

/**
 * Decodes the files of a batch into one NCHW array. A file that fails here
 * (e.g. a JPEG truncated after a valid header) is recorded, never tried again,
 * and its row is filled from the next readable file in dataset order, so the
 * batch keeps one row per index and the epoch goes on. `labelOf` gives the
 * label of the file actually decoded, keeping image and label together.
 */
export class BatchDecoder {
  private readonly broken = new Set<number>();
  private readonly maxPixels: number;
  readonly per: number;

  constructor(
    private readonly files: readonly string[],
    private readonly geo: FolderReadOptions,
    private readonly summary: FolderSummary,
    private readonly labelOf?: (row: number) => number,
  ) {
    this.maxPixels = geo.maxPixels ?? SHARP_DEFAULT_PIXEL_LIMIT;
    this.per = geo.channels * geo.height * geo.width;
  }

  async get(indices: number[]): Promise<Batch> {
    checkIndices(indices, this.files.length, `image folder ${this.summary.root}`);
    const images = new Float32Array(indices.length * this.per);
    const labels = this.labelOf ? new BigInt64Array(indices.length) : undefined;
    await Promise.all(
      indices.map(async (row, k) => {
        const used = await this.decodeRow(row, images, k * this.per);
        if (labels) labels[k] = BigInt(this.labelOf!(used));
      }),
    );
    return labels ? { images, labels } : { images };
  }

  private async decodeRow(row: number, out: Float32Array, offset: number): Promise<number> {
    const n = this.files.length;
    for (let step = 0; step < n; step++) {
      const r = (row + step) % n;
      if (this.broken.has(r)) continue;
      try {
        await decodeFile(this.files[r], this.geo, this.maxPixels, out, offset);
        if (step > 0) this.summary.substituted++;
        return r;
      } catch (e) {
        // Another row of the same batch may have found it broken meanwhile; count each file once.
        if (!this.broken.has(r)) {
          this.broken.add(r);
          recordSkip(this.summary, this.files[r], firstLine(e));
          this.summary.images--;
        }
      }
    }
    throw new UserError(`image folder ${this.summary.root}: none of its ${n} files could be decoded`);
  }
}

/** One line for logs and CLI output. */
export function describeSummary(s: FolderSummary): string {
  const classes = s.classes !== undefined ? ` in ${s.classes} classes` : '';
  let line = `${s.root}: ${s.images} images${classes}`;
  if (s.skipped > 0) {
    const first = s.skippedFiles[0];
    line += `; ${s.skipped} unreadable file${s.skipped === 1 ? '' : 's'} skipped (first: ${first.path}: ${first.reason})`;
  }
  if (s.substituted > 0) line += `; ${s.substituted} rows served by a substitute image`;
  return line;
}
