import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../util/errors';

/**
 * The IDX format of MNIST and Fashion-MNIST: two zero bytes, an element-type
 * byte, a rank byte, then `rank` big-endian uint32 dimensions and the data in
 * row-major order. Files may be gzip-compressed; that is detected from the
 * content, not the file name.
 */
export interface IdxArray {
  dims: number[];
  /** unsigned bytes, the only element type image and label files use */
  data: Uint8Array;
}

const UBYTE = 0x08;
const TYPE_NAMES: Record<number, string> = { 0x08: 'ubyte', 0x09: 'byte', 0x0b: 'int16', 0x0c: 'int32', 0x0d: 'float32', 0x0e: 'float64' };

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Parses IDX bytes; `source` names the file in every error. */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  let b = bytes;
  if (isGzip(b)) {
    try {
      b = gunzipSync(b);
    } catch (e) {
      throw new UserError(`${source}: not a readable gzip file (${(e as Error).message})`);
    }
  }
  if (b.length < 4) throw new UserError(`${source}: too short to be an IDX file (${b.length} bytes)`);
  if (b[0] !== 0 || b[1] !== 0) {
    const magic = Buffer.from(b.subarray(0, 4)).toString('hex');
    throw new UserError(`${source}: bad IDX magic number 0x${magic} (expected 0x0000TTRR)`);
  }
  const type = b[2];
  const rank = b[3];
  if (type !== UBYTE) {
    const name = TYPE_NAMES[type] ?? `unknown type 0x${type.toString(16)}`;
    throw new UserError(`${source}: IDX element type ${name} is not supported (image and label files are ubyte)`);
  }
  if (rank === 0) throw new UserError(`${source}: IDX rank 0`);
  const header = 4 + 4 * rank;
  if (b.length < header) throw new UserError(`${source}: truncated IDX header (${b.length} bytes, rank ${rank} needs ${header})`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, d) => a * d, 1);
  const have = b.length - header;
  if (have < count) {
    throw new UserError(`${source}: truncated IDX data: dims [${dims.join(', ')}] need ${count} bytes, file has ${have}`);
  }
  if (have > count) throw new UserError(`${source}: ${have - count} unexpected bytes after IDX data of dims [${dims.join(', ')}]`);
  return { dims, data: b.subarray(header, header + count) };
}

export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read IDX file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseIdx(bytes, path);
}

/** Serialises unsigned bytes as IDX (used to cut the committed test subset). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, d) => a * d, 1);
  if (count !== data.length) throw new Error(`encodeIdx: ${data.length} bytes for dims [${dims.join(', ')}]`);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out[2] = UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
