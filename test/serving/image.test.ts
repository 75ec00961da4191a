import sharp from 'sharp';
import { decodeImage, encodePng, sniffFormat } from '../../src/serving/image';

const grey = { channels: 1 as const, height: 4, width: 4, resize: 'fill' as const };

async function rawPng(width: number, height: number, channels: 1 | 3, f: (x: number, y: number, c: number) => number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) raw[(y * width + x) * channels + c] = f(x, y, c);
  return sharp(raw, { raw: { width, height, channels } }).png().toBuffer();
}

describe('decodeImage', () => {
  it('gives CHW floats in [0,1] with exact values for a lossless image of the model size', async () => {
    const png = await rawPng(4, 4, 1, (x, y) => (y * 4 + x) * 17);
    const t = await decodeImage(png, grey, 1e6);
    expect(Array.from(t)).toEqual(Array.from({ length: 16 }, (_, i) => (i * 17) / 255).map((v) => Math.fround(v)));
  });

  it('lays RGB out as planes (CHW)', async () => {
    const png = await rawPng(2, 2, 3, (_x, _y, c) => [10, 20, 30][c]);
    const t = await decodeImage(png, { channels: 3, height: 2, width: 2, resize: 'fill' }, 1e6);
    expect(Array.from(t).map((v) => Math.round(v * 255))).toEqual([10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30]);
  });

  it('converts colour to grey and grey to colour', async () => {
    const rgb = await rawPng(4, 4, 3, () => 200);
    expect(Array.from(await decodeImage(rgb, grey, 1e6)).every((v) => Math.abs(v * 255 - 200) <= 1)).toBe(true);
    const g = await rawPng(4, 4, 1, () => 90);
    const t = await decodeImage(g, { channels: 3, height: 4, width: 4, resize: 'fill' }, 1e6);
    expect(t.length).toBe(48);
    expect(Array.from(t).every((v) => Math.abs(v * 255 - 90) <= 1)).toBe(true);
  });

  it('applies EXIF orientation before resizing', async () => {
    // stored 2 wide × 4 tall, top half black, bottom half white; orientation 6 = rotate 90° clockwise to display
    const raw = Buffer.from([0, 0, 0, 0, 255, 255, 255, 255]);
    const stored = await sharp(raw, { raw: { width: 2, height: 4, channels: 1 } }).png().withMetadata({ orientation: 6 }).toBuffer();
    const t = await decodeImage(stored, { channels: 1, height: 2, width: 4, resize: 'fill' }, 1e6);
    // displayed: 4 wide × 2 tall, left half white, right half black
    expect(Array.from(t).map((v) => Math.round(v * 255))).toEqual([255, 255, 0, 0, 255, 255, 0, 0]);
  });

  it('resizes to the model geometry (cover crops, fill stretches)', async () => {
    const wide = await rawPng(40, 10, 1, (x) => (x < 10 || x >= 30 ? 255 : 0));
    const cover = await decodeImage(wide, { ...grey, resize: 'cover' }, 1e6);
    const fill = await decodeImage(wide, grey, 1e6);
    expect(Math.max(...cover)).toBeLessThan(0.1); // centre crop keeps the black middle only
    expect(fill[0]).toBeGreaterThan(0.9); // stretched: the white left edge survives
  });

  it('refuses empty, unknown, truncated and oversized input with the right status', async () => {
    const png = await rawPng(64, 64, 1, (x, y) => (x * y) % 256);
    const attempt = (b: Buffer, max = 1e6) => decodeImage(b, grey, max).then(() => 'decoded', (e) => `${e.statusCode} ${e.message}`);
    expect(await attempt(Buffer.alloc(0))).toMatch(/^400 image is empty/);
    expect(await attempt(Buffer.from('GIF89a but not really'))).toMatch(/^400 image: could not decode/);
    expect(await attempt(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toMatch(/^415 /);
    expect(await attempt(png.subarray(0, png.length / 2))).toMatch(/^400 image: could not decode/);
    expect(await attempt(png, 64 * 64 - 1)).toMatch(/^413 image is 64×64 = 4096 pixels; the limit is 4095/);
  });

  it('holds GIF and TIFF to their own, lower, pixel limit, read from the header', async () => {
    const img = () => sharp({ create: { width: 100, height: 100, channels: 3, background: { r: 9, g: 9, b: 9 } } });
    const limits = { maxPixels: 20000, maxPixelsGifTiff: 5000 };
    const attempt = (b: Buffer) => decodeImage(b, grey, limits).then(() => 'decoded', (e) => `${e.statusCode} ${e.message}`);
    expect(await attempt(await img().gif().toBuffer())).toBe('413 image is 100×100 = 10000 pixels; the limit is 5000 for GIF and TIFF');
    expect(await attempt(await img().tiff().toBuffer())).toBe('413 image is 100×100 = 10000 pixels; the limit is 5000 for GIF and TIFF');
    expect(await attempt(await img().png().toBuffer())).toBe('decoded');
    expect(await attempt(await img().jpeg().toBuffer())).toBe('decoded');
  });

  it('sniffs the five formats by their first bytes', async () => {
    const raw = Buffer.alloc(16, 128);
    const img = () => sharp(raw, { raw: { width: 4, height: 4, channels: 1 } });
    expect(sniffFormat(await img().png().toBuffer())).toBe('png');
    expect(sniffFormat(await img().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffFormat(await img().webp().toBuffer())).toBe('webp');
    expect(sniffFormat(await img().gif().toBuffer())).toBe('gif');
    expect(sniffFormat(await img().tiff().toBuffer())).toBe('tiff');
    expect(sniffFormat(Buffer.from('%PDF-1.7'))).toBeUndefined();
  });

  it('encodePng round-trips a CHW tensor', async () => {
    const t = Float32Array.from({ length: 16 }, (_, i) => i / 15);
    const png = await encodePng(t, grey);
    const back = await decodeImage(png, grey, 1e6);
    for (let i = 0; i < 16; i++) expect(Math.abs(back[i] - t[i])).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
  });
});
