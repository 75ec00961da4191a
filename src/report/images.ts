import sharp from 'sharp';

/**
 * Pictures for the report as PNG data URIs, so report.html is one file.
 * Pixels arrive as 8-bit CHW (how results.json stores them); small images
 * are enlarged with nearest-neighbour so single pixels stay visible.
 */
export interface Picture {
  /** 8-bit values, CHW */
  pixels: Uint8Array;
  /** [C, H, W], C = 1 or 3 */
  shape: readonly number[];
}

/** Target on-screen size of the longer side, in CSS pixels. */
const DISPLAY = 96;

export function fromBase64(b64: string, shape: readonly number[]): Picture {
  return { pixels: new Uint8Array(Buffer.from(b64, 'base64')), shape };
}

export async function pngDataUri(p: Picture): Promise<string> {
  const [c, h, w] = p.shape;
  const hwc = Buffer.alloc(c * h * w);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) hwc[i * c + ch] = p.pixels[ch * h * w + i];
  const scale = Math.max(1, Math.round(DISPLAY / Math.max(h, w)));
  const png = await sharp(hwc, { raw: { width: w, height: h, channels: c as 1 | 3 } })
    .resize(w * scale, h * scale, { kernel: 'nearest' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/**
 * x' − x shown as grey 128 ± the difference, stretched so the largest
 * change is full scale (the caption gives the true L∞).
 */
export function perturbation(adv: Picture, clean: Picture): { picture: Picture; linf: number } {
  let m = 0;
  for (let i = 0; i < adv.pixels.length; i++) m = Math.max(m, Math.abs(adv.pixels[i] - clean.pixels[i]));
  const out = new Uint8Array(adv.pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = m === 0 ? 128 : Math.round(127.5 + (127.5 * (adv.pixels[i] - clean.pixels[i])) / m);
  return { picture: { pixels: out, shape: adv.shape }, linf: m / 255 };
}
