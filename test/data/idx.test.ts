import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdx, parseIdx, readIdx } from '../../src/data/idx';
import { UserError } from '../../src/util/errors';

const expectUserError = (fn: () => unknown, pattern: RegExp) => {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toMatch(pattern);
};

describe('IDX parsing', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
  const bytes = encodeIdx([2, 3, 4], data);

  test('header: zero bytes, ubyte type 0x08, rank, big-endian dims', () => {
    expect([...bytes.subarray(0, 4)]).toEqual([0, 0, 0x08, 3]);
    expect([...bytes.subarray(4, 16)]).toEqual([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
    expect(bytes.length).toBe(16 + 24);
  });

  test('plain and gzip bytes give the same dims and data', () => {
    for (const b of [bytes, gzipSync(bytes)]) {
      const r = parseIdx(b, 'x.idx');
      expect(r.dims).toEqual([2, 3, 4]);
      expect([...r.data]).toEqual([...data]);
    }
  });

  test('labels file (rank 1) parses', () => {
    const r = parseIdx(encodeIdx([5], Uint8Array.of(9, 0, 3, 3, 1)), 'labels');
    expect(r.dims).toEqual([5]);
    expect([...r.data]).toEqual([9, 0, 3, 3, 1]);
  });

  test('wrong magic names the file and the magic', () => {
    const bad = Uint8Array.from(bytes);
    bad[0] = 0x12;
    expectUserError(() => parseIdx(bad, '/data/train-images-idx3-ubyte'), /\/data\/train-images-idx3-ubyte: bad IDX magic number 0x12000803/);
  });

  test('truncated data names the file and the shortfall', () => {
    expectUserError(() => parseIdx(bytes.subarray(0, bytes.length - 5), 'a.idx'), /a\.idx: truncated IDX data: dims \[2, 3, 4\] need 24 bytes, file has 19/);
  });

  test('truncated gzip stream is reported as such', () => {
    const gz = gzipSync(bytes);
    expectUserError(() => parseIdx(gz.subarray(0, gz.length - 10), 'b.gz'), /b\.gz: not a readable gzip file/);
  });

  test('truncated header, tiny file, trailing bytes and foreign element types are errors', () => {
    expectUserError(() => parseIdx(bytes.subarray(0, 9), 'h'), /h: truncated IDX header/);
    expectUserError(() => parseIdx(Uint8Array.of(0, 0), 't'), /t: too short/);
    expectUserError(() => parseIdx(Uint8Array.of(...bytes, 1, 2), 'x'), /x: 2 unexpected bytes/);
    const floats = Uint8Array.from(bytes);
    floats[2] = 0x0d;
    expectUserError(() => parseIdx(floats, 'f'), /f: IDX element type float32 is not supported/);
  });

  test('readIdx reads from disk and reports a missing file by path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idx-'));
    try {
      const p = join(dir, 'x-idx3-ubyte.gz');
      writeFileSync(p, gzipSync(bytes));
      expect(readIdx(p).dims).toEqual([2, 3, 4]);
      expectUserError(() => readIdx(join(dir, 'missing')), /cannot read IDX file .*missing: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
