import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DataType, bytesPerElement, dataTypeName, typedArrayFromBytes } from '../onnx/dtype';
import { TensorData, numel } from '../onnx/tensor';
import { UserError } from '../util/errors';
import { RngState } from '../util/random';
import { OptimizerConfig } from './optimizer';

/**
 * Everything a training run needs to continue exactly where it stopped.
 * The file format is described in docs/checkpoint.md.
 */
export interface Checkpoint {
  /** optimizer updates made so far */
  step: number;
  /** epoch in progress (0-based) */
  epoch: number;
  /** batches of `epoch` already consumed */
  batchInEpoch: number;
  /** the shuffling RNG as it was at the start of `epoch` (the epoch's order is drawn from it) */
  rng: RngState | null;
  optimizer: OptimizerConfig;
  /** trainable parameters */
  params: Map<string, TensorData>;
  /** optimizer state (moments, momentum buffers), keyed by state name */
  optimizerState: Map<string, TensorData>;
  /** non-trainable tensors that training updates (BatchNorm running statistics) */
  buffers: Map<string, TensorData>;
  /** free-form strings: model path, loss, anything a reader of the file should know */
  metadata: Record<string, string>;
  /** the running average of the parameters and buffers, when the run averages weights (TrainerOptions.average) */
  average?: Map<string, TensorData>;
}

export const CHECKPOINT_MAGIC = 'S2SCKPT\0';
export const CHECKPOINT_VERSION = 1;
/** tensor data offsets are multiples of this, so a reader may map tensors without copying */
const ALIGN = 64;

type Group = 'param' | 'optimizer' | 'buffer' | 'average';

interface TensorEntry {
  name: string;
  group: Group;
  dataType: DataType;
  dims: number[];
  /** byte offset from the start of the data section */
  offset: number;
  byteLength: number;
}

interface Header {
  step: number;
  epoch: number;
  batchInEpoch: number;
  rng: RngState | null;
  optimizer: OptimizerConfig;
  metadata: Record<string, string>;
  tensors: TensorEntry[];
  dataBytes: number;
  /** hex sha256 of the data section, so a damaged file is refused rather than resumed from */
  sha256: string;
}

const pad = (n: number): number => (ALIGN - (n % ALIGN)) % ALIGN;

function entries(c: Checkpoint): Array<{ group: Group; name: string; t: TensorData }> {
  const out: Array<{ group: Group; name: string; t: TensorData }> = [];
  for (const [name, t] of c.params) out.push({ group: 'param', name, t });
  for (const [name, t] of c.optimizerState) out.push({ group: 'optimizer', name, t });
  for (const [name, t] of c.buffers) out.push({ group: 'buffer', name, t });
  for (const [name, t] of c.average ?? []) out.push({ group: 'average', name, t });
  return out;
}

const bytesOf = (t: TensorData): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/**
 * Writes the checkpoint atomically: into a temporary file in the same folder,
 * flushed to disk, then renamed over `path`. A process killed at any moment
 * leaves either the previous checkpoint or the new one, never a mix.
 */
export function saveCheckpoint(path: string, c: Checkpoint): void {
  const items = entries(c);
  const tensors: TensorEntry[] = [];
  const hash = createHash('sha256');
  let offset = 0;
  const zeros = new Uint8Array(ALIGN);
  for (const { group, name, t } of items) {
    if (t.data.length !== numel(t.dims)) throw new Error(`checkpoint tensor '${name}': ${t.data.length} values for dims [${t.dims}]`);
    const b = bytesOf(t);
    tensors.push({ name, group, dataType: t.dataType, dims: [...t.dims], offset, byteLength: b.byteLength });
    hash.update(b);
    const p = pad(b.byteLength);
    hash.update(zeros.subarray(0, p));
    offset += b.byteLength + p;
  }
  const header: Header = {
    step: c.step,
    epoch: c.epoch,
    batchInEpoch: c.batchInEpoch,
    rng: c.rng,
    optimizer: c.optimizer,
    metadata: c.metadata,
    tensors,
    dataBytes: offset,
    sha256: hash.digest('hex'),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(16);
  prefix.write(CHECKPOINT_MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(CHECKPOINT_VERSION, 8);
  prefix.writeUInt32LE(json.byteLength, 12);
  const headPad = pad(prefix.byteLength + json.byteLength);

  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, prefix);
    writeAll(fd, json);
    writeAll(fd, zeros.subarray(0, headPad));
    for (const { t } of items) {
      const b = bytesOf(t);
      writeAll(fd, b);
      writeAll(fd, zeros.subarray(0, pad(b.byteLength)));
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  removeStaleTemporaries(dir, basename(path));
  // Make the rename itself durable (the directory entry); not possible on every platform.
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* directories cannot be opened for fsync on Windows */
  }
}

/** Temporary files of writers that were killed mid-save (their process is gone). */
function removeStaleTemporaries(dir: string, base: string): void {
  const pattern = new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.tmp-(\\d+)-[0-9a-f]+$`);
  for (const f of readdirSync(dir)) {
    const m = pattern.exec(f);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    rmSync(join(dir, f), { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.byteLength) done += writeSync(fd, b, done, b.byteLength - done);
}

export function loadCheckpoint(path: string): Checkpoint {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `checkpoint not found: ${path}` : `cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  const bad = (why: string) => new UserError(`checkpoint ${path} is not usable: ${why}`);
  if (buf.byteLength < 16 || buf.toString('latin1', 0, 8) !== CHECKPOINT_MAGIC) throw bad('not an s2s checkpoint (wrong magic bytes)');
  const version = buf.readUInt32LE(8);
  if (version !== CHECKPOINT_VERSION) throw bad(`format version ${version}; this build reads version ${CHECKPOINT_VERSION}`);
  const jsonLen = buf.readUInt32LE(12);
  if (16 + jsonLen > buf.byteLength) throw bad('truncated header');
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + jsonLen)) as Header;
  } catch (e) {
    throw bad(`header is not JSON (${(e as Error).message})`);
  }
  const start = 16 + jsonLen + pad(16 + jsonLen);
  if (start + header.dataBytes !== buf.byteLength) throw bad(`expected ${start + header.dataBytes} bytes, file has ${buf.byteLength} (truncated or padded)`);
  const data = buf.subarray(start);
  const digest = createHash('sha256').update(data).digest('hex');
  if (digest !== header.sha256) throw bad('data checksum mismatch');

  const c: Checkpoint = {
    step: header.step,
    epoch: header.epoch,
    batchInEpoch: header.batchInEpoch,
    rng: header.rng,
    optimizer: header.optimizer,
    metadata: header.metadata ?? {},
    params: new Map(),
    optimizerState: new Map(),
    buffers: new Map(),
  };
  for (const e of header.tensors) {
    const expected = numel(e.dims) * bytesPerElement(e.dataType);
    if (expected !== e.byteLength || e.offset + e.byteLength > data.byteLength) {
      throw bad(`tensor '${e.name}' (${dataTypeName(e.dataType)} [${e.dims}]) does not fit its ${e.byteLength} bytes`);
    }
    const t: TensorData = { dataType: e.dataType, dims: e.dims, data: typedArrayFromBytes(e.dataType, data.subarray(e.offset, e.offset + e.byteLength)) };
    if (e.group === 'average') (c.average ??= new Map()).set(e.name, t);
    else if (e.group === 'param') c.params.set(e.name, t);
    else if (e.group === 'optimizer') c.optimizerState.set(e.name, t);
    else if (e.group === 'buffer') c.buffers.set(e.name, t);
    else throw bad(`tensor '${e.name}' is in an unknown group '${e.group as string}'`);
  }
  return c;
}
