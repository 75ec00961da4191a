import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describeSummary } from '../../src/data/imageFiles';
import { openImageFolder } from '../../src/data/imageFolder';
import { openUnlabelledFolder } from '../../src/data/unlabelledFolder';
import { UserError } from '../../src/util/errors';

type RGB = [number, number, number];

function solid(w: number, h: number, [r, g, b]: RGB): sharp.Sharp {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } });
}

/** Left half black, right half white: shows where a centre crop landed. */
function halves(w: number, h: number): sharp.Sharp {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = w / 2; x < w; x++) px.fill(255, (y * w + x) * 3, (y * w + x + 1) * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

describe('image folder readers', () => {
  let root: string;
  const RED: RGB = [200, 30, 10];
  const BLUE: RGB = [20, 40, 220];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'imgfolder-'));
    for (const c of ['cat', 'dog', 'empty']) mkdirSync(join(root, c));
    mkdirSync(join(root, 'dog', 'nested'));
    await solid(40, 30, RED).png().toFile(join(root, 'cat', 'a.png'));
    await solid(30, 40, RED).jpeg({ quality: 95 }).toFile(join(root, 'cat', 'b.JPEG'));
    await solid(20, 20, BLUE).webp({ lossless: true }).toFile(join(root, 'dog', 'c.webp'));
    await halves(64, 32).png().toFile(join(root, 'dog', 'nested', 'd.png'));
    // Corrupt files: text under an image name (caught on open), and a JPEG cut off after its header (caught while decoding).
    writeFileSync(join(root, 'cat', 'broken.png'), 'this is not a png');
    writeFileSync(join(root, 'dog', 'empty.jpg'), '');
    const noise = Buffer.from(Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 37) % 251));
    const jpeg = await sharp(noise, { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    writeFileSync(join(root, 'dog', 'e-truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    writeFileSync(join(root, 'dog', 'notes.txt'), 'ignored: not an image name');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const geo = { channels: 3 as const, height: 16, width: 16 };

  test('classes are subfolders in byte order; unreadable headers are skipped and counted', async () => {
    const ds = await openImageFolder(root, geo);
    expect(ds.labels).toEqual(['cat', 'dog', 'empty']);
    expect(ds.shape).toEqual([3, 16, 16]);
    expect(ds.files.map((f) => f.slice(root.length + 1))).toEqual(['cat/a.png', 'cat/b.JPEG', 'dog/c.webp', 'dog/e-truncated.jpg', 'dog/nested/d.png']);
    expect([...ds.classOf]).toEqual([0, 0, 1, 1, 1]);
    expect(ds.size).toBe(5);
    expect(ds.summary.skipped).toBe(2);
    expect(ds.summary.skippedFiles.map((s) => s.path).sort()).toEqual(['cat/broken.png', 'dog/empty.jpg']);
    expect(ds.summary.skippedFiles.find((s) => s.path === 'dog/empty.jpg')!.reason).toBe('empty file');
  });

  test('PNG, JPEG and WebP decode to float32 CHW in [0,1] with the right colours', async () => {
    const ds = await openImageFolder(root, geo);
    const b = await ds.get([0, 1, 2]);
    const plane = 16 * 16;
    expect(b.images.length).toBe(3 * 3 * plane);
    expect([...b.labels!]).toEqual([0n, 0n, 1n]);
    const pixel = (row: number, c: number, p: number) => b.images[row * 3 * plane + c * plane + p];
    for (let c = 0; c < 3; c++) {
      expect(pixel(0, c, 77)).toBeCloseTo(RED[c] / 255, 5); // lossless PNG
      expect(Math.abs(pixel(1, c, 77) - RED[c] / 255)).toBeLessThan(0.03); // JPEG
      expect(pixel(2, c, 77)).toBeCloseTo(BLUE[c] / 255, 5); // lossless WebP
    }
  });

  test('a wide image is scaled and centre-cropped: half dark, half bright', async () => {
    const ds = await openImageFolder(root, { channels: 1, height: 8, width: 8 });
    const b = await ds.get([4]);
    expect(b.images.length).toBe(64);
    for (let y = 0; y < 8; y++) {
      expect(b.images[y * 8 + 1]).toBeLessThan(0.05);
      expect(b.images[y * 8 + 6]).toBeGreaterThan(0.95);
    }
  });

  test('grey output for colour input has one channel', async () => {
    const ds = await openImageFolder(root, { channels: 1, height: 4, width: 4 });
    const b = await ds.get([0]);
    expect(b.images.length).toBe(16);
    // Rec. 601-ish luma of RED lies between its darkest and brightest channel.
    expect(b.images[5]).toBeGreaterThan(10 / 255);
    expect(b.images[5]).toBeLessThan(200 / 255);
  });

  test('a file that fails mid-epoch is counted and its row filled from the next readable file', async () => {
    const ds = await openImageFolder(root, geo);
    const truncated = ds.files.findIndex((f) => f.endsWith('e-truncated.jpg'));
    const b = await ds.get([truncated, 0, truncated]);
    expect(b.images.length).toBe(3 * 3 * 256);
    expect(ds.summary.skipped).toBe(3);
    expect(ds.summary.images).toBe(4);
    expect(ds.summary.skippedFiles.map((s) => s.path)).toContain('dog/e-truncated.jpg');
    expect(ds.summary.substituted).toBe(2);
    // The substitute is d.png (next in order), class dog, whose label travels with it.
    expect([...b.labels!]).toEqual([1n, 0n, 1n]);
    const again = await ds.get([4]);
    expect(b.images.subarray(0, 768)).toEqual(again.images);
    expect(describeSummary(ds.summary)).toMatch(/4 images in 3 classes; 3 unreadable files skipped .*2 rows served by a substitute/);
  });

  test("check 'decode' finds the truncated file while opening", async () => {
    const seen: number[] = [];
    const ds = await openImageFolder(root, { ...geo, check: 'decode', onProgress: (d) => seen.push(d) });
    expect(ds.size).toBe(4);
    expect(ds.summary.skipped).toBe(3);
    expect(seen.length).toBe(7);
    expect(Math.max(...seen)).toBe(7);
  });

  test('unlabelled folder: every image at any depth, no labels', async () => {
    const ds = await openUnlabelledFolder(root, geo);
    expect(ds.size).toBe(5);
    expect(ds.labels).toBeUndefined();
    const b = await ds.get([0, 2]);
    expect(b.labels).toBeUndefined();
    expect(b.images.length).toBe(2 * 768);
  });

  test('missing folders, folders without classes or images are UserErrors', async () => {
    await expect(openImageFolder(join(root, 'nope'), geo)).rejects.toThrow(UserError);
    await expect(openImageFolder(join(root, 'nope'), geo)).rejects.toThrow(/image folder not found: .*nope/);
    await expect(openImageFolder(join(root, 'cat'), geo)).rejects.toThrow(/has no class subfolders/);
    await expect(openUnlabelledFolder(join(root, 'empty'), geo)).rejects.toThrow(/no readable JPEG, PNG or WebP/);
  });
});
