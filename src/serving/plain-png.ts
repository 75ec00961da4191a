import { PNG } from 'pngjs';
import type { Geometry } from './image';

/**
 * A PNG that already is the model's input — its size, 8-bit grey for a grey
 * model or 8-bit RGB for a colour one, no transparency, no colour
 * management, nothing to orient — needs no conversion at all, and a libvips
 * pipeline costs about 300 µs of CPU per call whatever the image's size
 * (bench/throughput.ts: a 28×28 PNG through sharp added about 0.6 ms of the
 * service's CPU per image, over half of the ~1.1 ms the defended graph costs).
 * Such images are decoded in-line by pngjs instead: inflate and unfilter,
 * tens of microseconds for the small images where the fixed cost dominates.
 * Anything else — another size or colour type, a chunk that could change
 * the pixels (tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, eXIf, PLTE, APNG frames),
 * a bad CRC, a truncated stream, data after IEND — returns undefined and
 * goes through sharp, which then also gives the error message.
 */

/** Raw bytes above which the in-line decode would hold the event loop longer than sharp's fixed cost saves. */
export const PLAIN_PNG_MAX_BYTES = 16384;

/** Ancillary chunks that carry no pixel semantics libvips would apply. */
const INERT_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt', 'pHYs', 'tIME']);

const SIGNATURE_BYTES = 8;
const CHUNK_OVERHEAD = 12; // length, type, CRC

/**
 * The image's pixels as interleaved bytes (H·W·C), or undefined when the PNG
 * is not plain (see above) or its pixels exceed `maxPixels`.
 */
export function decodePlainPng(bytes: Uint8Array, geo: Geometry, maxPixels: number): Uint8Array | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = (at: number) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  // IHDR first, 13 bytes: width, height, bit depth, colour type, compression, filter, interlace
  if (bytes.length < SIGNATURE_BYTES + CHUNK_OVERHEAD + 13 || view.getUint32(SIGNATURE_BYTES) !== 13 || type(SIGNATURE_BYTES + 4) !== 'IHDR') return undefined;
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24];
  const colourType = bytes[25];
  if (width !== geo.width || height !== geo.height || width * height > maxPixels) return undefined;
  if (depth !== 8 || colourType !== (geo.channels === 1 ? 0 : 2)) return undefined;
  if (width * height * geo.channels > PLAIN_PNG_MAX_BYTES) return undefined;

  // Every chunk is IHDR, IDAT, IEND or inert, and IEND ends the file exactly.
  let at = SIGNATURE_BYTES;
  for (;;) {
    if (at + CHUNK_OVERHEAD > bytes.length) return undefined;
    const length = view.getUint32(at);
    const t = type(at + 4);
    if (t !== 'IHDR' && t !== 'IDAT' && t !== 'IEND' && !INERT_CHUNKS.has(t)) return undefined;
    at += CHUNK_OVERHEAD + length;
    if (t === 'IEND') {
      if (at !== bytes.length) return undefined;
      break;
    }
  }

  let rgba: Buffer;
  try {
    // checkCRC: a corrupted file is refused here as libvips would refuse it
    rgba = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { checkCRC: true }).data;
  } catch {
    return undefined;
  }
  if (rgba.length !== width * height * 4) return undefined;
  // pngjs always expands to RGBA (grey repeated, alpha 255): keep the channels the model takes.
  const pixels = width * height;
  const out = new Uint8Array(pixels * geo.channels);
  if (geo.channels === 1) for (let p = 0; p < pixels; p++) out[p] = rgba[p * 4];
  else
    for (let p = 0, s = 0; p < pixels; p++, s += 4) {
      out[p * 3] = rgba[s];
      out[p * 3 + 1] = rgba[s + 1];
      out[p * 3 + 2] = rgba[s + 2];
    }
  return out;
}
