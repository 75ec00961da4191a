import sharp from 'sharp';
import { UserError } from '../util/errors';
import { decodePlainPng } from './plain-png';
import type { InputSpec, ResizeFit } from '../models/manifest';

/**
 * Image bytes → the model's input tensor (float32, CHW, [0,1]) with sharp:
 * EXIF orientation applied, converted to the model's channels, resized to its
 * geometry. Every way the bytes can be wrong ends in a UserError with a 4xx
 * status and a message that says what was wrong (never the bytes themselves).
 */

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff';
export const IMAGE_MEDIA_TYPES: Record<string, ImageFormat> = {
  'image/jpeg': 'jpeg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/tiff': 'tiff',
};

export interface Geometry {
  channels: 1 | 3;
  height: number;
  width: number;
  resize: ResizeFit;
}

export function geometryOf(input: InputSpec): Geometry {
  return { channels: input.channels, height: input.height, width: input.width, resize: input.resize ?? 'cover' };
}

/** The format named by the first bytes, or undefined; checked before sharp sees the data so no other decoder (SVG, PDF, …) is ever reached. */
export function sniffFormat(b: Uint8Array): ImageFormat | undefined {
  const at = (i: number, ...xs: number[]) => xs.every((x, k) => b[i + k] === x);
  if (b.length >= 3 && at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (b.length >= 8 && at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (b.length >= 6 && (at(0, 0x47, 0x49, 0x46, 0x38, 0x37, 0x61) || at(0, 0x47, 0x49, 0x46, 0x38, 0x39, 0x61))) return 'gif';
  if (b.length >= 12 && at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  if (b.length >= 4 && (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a))) return 'tiff';
  return undefined;
}

/**
 * What one image may cost to decode. Pixels are checked against the header
 * before any pixel is decoded; only the first frame of an animated GIF, WebP
 * or TIFF is ever decoded, so frames cost nothing. GIF and TIFF get their own,
 * lower, pixel limit: libvips decodes them 5–20× slower per pixel than JPEG
 * (which it shrinks while decoding) or PNG, so a 14 KB GIF declaring
 * 4000×4000 would take a third of a second of a decode thread.
 */
export interface DecodeLimits {
  /** width × height at most (JPEG, PNG, WebP; and GIF/TIFF unless maxPixelsGifTiff is set) */
  maxPixels: number;
  maxPixelsGifTiff?: number;
  /** seconds one decode may take; the request fails with 413 then (libvips is asked to stop too) */
  timeoutS?: number;
}

function limitFor(format: ImageFormat, limits: DecodeLimits): { pixels: number; what: string } {
  if ((format === 'gif' || format === 'tiff') && limits.maxPixelsGifTiff !== undefined && limits.maxPixelsGifTiff < limits.maxPixels) {
    return { pixels: limits.maxPixelsGifTiff, what: `${limits.maxPixelsGifTiff} for GIF and TIFF` };
  }
  return { pixels: limits.maxPixels, what: String(limits.maxPixels) };
}

async function decodeError(bytes: Uint8Array, label: string, e: unknown, limit: { what: string }): Promise<UserError> {
  if (e instanceof UserError) return e;
  const msg = (e as Error).message ?? String(e);
  if (/pixel limit/i.test(msg)) {
    // Only on this path: read the header alone (no limit, no pixels) so the message can give the size.
    const m = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata().catch(() => undefined);
    const size = m?.width && m?.height ? `${m.width}×${m.height} = ${m.width * m.height} pixels` : 'over the pixel limit';
    return new UserError(`${label} is ${size}; the limit is ${limit.what}`, 413);
  }
  if (/timeout/i.test(msg)) return new UserError(`${label} took too long to decode; send a smaller image`, 413);
  // libvips messages name the loader and the problem ("VipsJpeg: Premature end of input file"); no pixel data.
  return new UserError(`${label}: could not decode the image (${msg.split('\n')[0].slice(0, 200)})`, 400);
}

/**
 * Decodes one image into `out` at `offset` (C·H·W floats), or into a new array.
 * `label` names the image in error messages (e.g. "image 2" or a part's filename).
 * A PNG that already is the model's input is decoded in-line (plain-png.ts);
 * every other image goes through sharp.
 */
export async function decodeImage(
  bytes: Uint8Array,
  geo: Geometry,
  limits: number | DecodeLimits,
  label = 'image',
  out?: Float32Array,
  offset = 0,
): Promise<Float32Array> {
  if (bytes.length === 0) throw new UserError(`${label} is empty`);
  const format = sniffFormat(bytes);
  if (!format) throw new UserError(`${label} is not a JPEG, PNG, WebP, GIF or TIFF image`, 415);
  const lim = typeof limits === 'number' ? { maxPixels: limits } : limits;
  const plain = format === 'png' ? decodePlainPng(bytes, geo, limitFor(format, lim).pixels) : undefined;
  return toPlanes(plain ?? (await decodeWithSharp(bytes, format, geo, lim, label)), geo, out, offset);
}

/** The general path: any supported format, size and colour space, through a libvips pipeline; interleaved bytes (H·W·C). */
export async function decodeWithSharp(bytes: Uint8Array, format: ImageFormat, geo: Geometry, lim: DecodeLimits, label = 'image'): Promise<Uint8Array> {
  const limit = limitFor(format, lim);
  let img = sharp(bytes, { limitInputPixels: limit.pixels, autoOrient: true, failOn: 'warning', pages: 1 });
  if (lim.timeoutS) img = img.timeout({ seconds: lim.timeoutS });
  let pipeline = img.removeAlpha();
  pipeline = geo.channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  pipeline = pipeline.resize(geo.width, geo.height, { fit: geo.resize, position: 'centre', background: { r: 0, g: 0, b: 0 } });
  let data: Buffer;
  let channels: number;
  try {
    // libvips checks limitInputPixels against the header before it decodes any pixel.
    const r = await withDeadline(pipeline.raw().toBuffer({ resolveWithObject: true }), lim.timeoutS, label);
    data = r.data;
    channels = r.info.channels;
  } catch (e) {
    throw await decodeError(bytes, label, e, limit);
  }
  if (channels !== geo.channels) throw new Error(`sharp produced ${channels} channels, expected ${geo.channels}`);
  return data;
}

/** Interleaved bytes (H·W·C) → C·H·W floats in [0,1], into `out` at `offset` or a new array. */
function toPlanes(data: Uint8Array, geo: Geometry, out: Float32Array | undefined, offset: number): Float32Array {
  const plane = geo.height * geo.width;
  const channels = geo.channels;
  const dst = out ?? new Float32Array(channels * plane);
  for (let c = 0; c < channels; c++) {
    const base = offset + c * plane;
    for (let p = 0, s = c; p < plane; p++, s += channels) dst[base + p] = data[s] / 255;
  }
  return dst;
}

/**
 * The decode's result, or a 413 once `seconds` have passed. libvips's own
 * timeout does not fire inside every loader (GIF decodes in one call), so the
 * request is answered at the deadline either way; a decode that runs on
 * finishes on its pool thread and is dropped. The pixel limits are what bound
 * that work.
 */
function withDeadline<T>(p: Promise<T>, seconds: number | undefined, label: string): Promise<T> {
  if (!seconds) return p;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UserError(`${label} took more than ${seconds} s to decode; send a smaller image`, 413)), seconds * 1000);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A CHW float image in [0,1] as PNG bytes (values outside [0,1] are clipped). */
export async function encodePng(chw: Float32Array, geo: Pick<Geometry, 'channels' | 'height' | 'width'>): Promise<Buffer> {
  const plane = geo.height * geo.width;
  const hwc = Buffer.alloc(plane * geo.channels);
  for (let c = 0; c < geo.channels; c++) {
    for (let p = 0; p < plane; p++) {
      const v = chw[c * plane + p];
      hwc[p * geo.channels + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  }
  return sharp(hwc, { raw: { width: geo.width, height: geo.height, channels: geo.channels } }).png().toBuffer();
}
