import { PNG } from 'pngjs';
import sharp from 'sharp';
import { crc32 } from 'node:zlib';
import { Geometry, decodeImage, decodeWithSharp } from '../../src/serving/image';
import { PLAIN_PNG_MAX_BYTES, decodePlainPng } from '../../src/serving/plain-png';
import { Rng } from '../../src/util/random';

/**
 * The in-line PNG path must give exactly the bytes sharp gives for every
 * image it takes, and must leave every other image to sharp.
 */
const geo = (channels: 1 | 3, width: number, height: number): Geometry => ({ channels, width, height, resize: 'cover' });

function noise(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng.uniform() * 256);
  return b;
}

/** The same pixels, encoded in the ways a client's PNG may come: sharp (libspng) at several settings, pngjs with each row filter. */
async function encodings(g: Geometry, seed: number): Promise<Array<[string, Buffer]>> {
  const rng = new Rng(seed);
  const raw = noise(rng, g.width * g.height * g.channels);
  // smooth rows too, so the filters other than None actually get chosen
  for (let i = g.channels; i < raw.length; i += 2) raw[i] = raw[i - g.channels];
  const viaSharp = (o: sharp.PngOptions) =>
    sharp(raw, { raw: { width: g.width, height: g.height, channels: g.channels } })
      .toColourspace(g.channels === 1 ? 'b-w' : 'srgb')
      .png(o)
      .toBuffer();
  const rgba = Buffer.alloc(g.width * g.height * 4);
  for (let p = 0; p < g.width * g.height; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = raw[p * g.channels + (g.channels === 1 ? 0 : c)];
    rgba[p * 4 + 3] = 255;
  }
  const viaPngjs = (filterType: number) => {
    const png = new PNG({ width: g.width, height: g.height, colorType: g.channels === 1 ? 0 : 2, inputColorType: 6, inputHasAlpha: true });
    rgba.copy(png.data);
    return PNG.sync.write(png, { colorType: g.channels === 1 ? 0 : 2, inputColorType: 6, inputHasAlpha: true, filterType });
  };
  return [
    ['sharp, default', await viaSharp({})],
    ['sharp, level 0', await viaSharp({ compressionLevel: 0 })],
    ['sharp, adaptive filtering, level 9', await viaSharp({ adaptiveFiltering: true, compressionLevel: 9 })],
    ['sharp, interlaced (Adam7)', await viaSharp({ progressive: true })],
    ...[0, 1, 2, 3, 4].map((f) => [`pngjs, filter ${f}`, viaPngjs(f)] as [string, Buffer]),
  ];
}

/** A chunk with a correct CRC, inserted before IEND. */
function withChunk(png: Buffer, type: string, data: Buffer): Buffer {
  const iend = png.length - 12;
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([png.subarray(0, iend), head, data, crc, png.subarray(iend)]);
}

describe('plain PNGs decoded in-line', () => {
  const geometries = [geo(1, 28, 28), geo(1, 7, 5), geo(3, 32, 32), geo(3, 3, 9)];
  it.each(geometries.map((g) => [`${g.channels === 1 ? 'grey' : 'RGB'} ${g.width}×${g.height}`, g] as const))('%s: the same bytes as sharp, for every encoder and filter', async (_l, g) => {
    for (const [how, png] of await encodings(g, g.width * 31 + g.height)) {
      const plain = decodePlainPng(png, g, 1e6);
      expect({ how, taken: plain !== undefined }).toEqual({ how, taken: true });
      expect({ how, same: Buffer.compare(Buffer.from(plain!), Buffer.from(await decodeWithSharp(png, 'png', g, { maxPixels: 1e6 }))) === 0 }).toEqual({ how, same: true });
      // and decodeImage's floats are those bytes / 255, in planes
      const t = await decodeImage(png, g, 1e6);
      const plane = g.width * g.height;
      expect(t[plane * (g.channels - 1) + plane - 1]).toBe(Math.fround(plain![plane * g.channels - 1] / 255));
    }
  });

  it('a text chunk (inert) is fine; tRNS, gAMA, iCCP, sRGB, eXIf or an unknown chunk sends the image to sharp', async () => {
    const g = geo(1, 28, 28);
    const [[, png]] = await encodings(g, 3);
    expect(decodePlainPng(withChunk(png, 'tEXt', Buffer.from('Comment\0hello', 'latin1')), g, 1e6)).toBeDefined();
    for (const type of ['tRNS', 'gAMA', 'iCCP', 'sRGB', 'eXIf', 'vpAg']) expect({ type, plain: decodePlainPng(withChunk(png, type, Buffer.alloc(4)), g, 1e6) }).toEqual({ type, plain: undefined });
  });

  it('another size, colour type or bit depth, a palette, alpha, or too many bytes: sharp', async () => {
    const rng = new Rng(9);
    const encode = (w: number, h: number, ch: number, o: sharp.PngOptions = {}, space: 'b-w' | 'srgb' = ch === 1 ? 'b-w' : 'srgb') =>
      sharp(noise(rng, w * h * ch), { raw: { width: w, height: h, channels: ch as 1 | 3 | 4 } })
        .toColourspace(space)
        .png(o)
        .toBuffer();
    const grey28 = geo(1, 28, 28);
    expect(decodePlainPng(await encode(28, 27, 1), grey28, 1e6)).toBeUndefined(); // size
    expect(decodePlainPng(await encode(28, 28, 3), grey28, 1e6)).toBeUndefined(); // RGB for a grey model: sharp converts
    expect(decodePlainPng(await encode(28, 28, 1), geo(3, 28, 28), 1e6)).toBeUndefined(); // grey for an RGB model
    expect(decodePlainPng(await encode(28, 28, 4), geo(3, 28, 28), 1e6)).toBeUndefined(); // alpha
    expect(decodePlainPng(await encode(28, 28, 3, { palette: true }), geo(3, 28, 28), 1e6)).toBeUndefined();
    const sixteen = new PNG({ width: 28, height: 28, bitDepth: 16, colorType: 0, inputColorType: 0 });
    expect(decodePlainPng(PNG.sync.write(sixteen, { bitDepth: 16, colorType: 0, inputColorType: 6 }), grey28, 1e6)).toBeUndefined();
    const side = Math.ceil(Math.sqrt(PLAIN_PNG_MAX_BYTES / 3)) + 1;
    expect(decodePlainPng(await encode(side, side, 3), geo(3, side, side), 1e8)).toBeUndefined();
  });

  it('over the pixel limit, a bad CRC, a truncated file or bytes after IEND: sharp, which gives the error as before', async () => {
    const g = geo(1, 28, 28);
    const [[, png]] = await encodings(g, 4);
    const attempt = (b: Buffer, max = 1e6) => decodeImage(b, g, max).then(() => 'decoded', (e: { statusCode: number; message: string }) => `${e.statusCode} ${e.message}`);

    expect(decodePlainPng(png, g, 28 * 28 - 1)).toBeUndefined();
    expect(await attempt(png, 28 * 28 - 1)).toMatch(/^413 image is 28×28 = 784 pixels; the limit is 783/);

    const badCrc = Buffer.from(png);
    badCrc[badCrc.length - 12 - 1] ^= 0xff; // the last IDAT's CRC
    expect(decodePlainPng(badCrc, g, 1e6)).toBeUndefined();
    expect(await attempt(badCrc)).toMatch(/^400 image: could not decode/);

    const truncated = png.subarray(0, png.length - 20);
    expect(decodePlainPng(truncated, g, 1e6)).toBeUndefined();
    expect(await attempt(truncated)).toMatch(/^400 image: could not decode/);

    expect(decodePlainPng(Buffer.concat([png, Buffer.from('trailing')]), g, 1e6)).toBeUndefined();
  });
});
