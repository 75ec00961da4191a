import { GraphBuilder } from '../onnx/builder';
import { Graph } from '../onnx/graph';
import { UserError } from '../util/errors';
import { convBn } from './layers';
import { Geometry, checkGeometry, pooledSize } from './options';

/**
 * SegNet (Badrinarayanan, Kendall, Cipolla 2017) as an image-to-image
 * autoencoder, the `AE = d ∘ e` of S2SNet.
 *
 * Encoder stage s: `convs[s]` × (3×3 conv + BN + ReLU) at `widths[s]` channels,
 * then a 2×2/2 max-pool that also outputs its argmax indices. Decoder stage s
 * mirrors it: max-unpool with stage s's indices (restoring the pre-pool size,
 * so odd sizes such as 7 → 3 → 7 round-trip), then the same number of
 * conv + BN + ReLU blocks, the last of which narrows to the width of the stage
 * above — the layout of the original Caffe model (conv{s}_{j}_D). Decoder
 * stage 1's last conv maps to the image's channels and is followed by a
 * Sigmoid instead of BN + ReLU, so the reconstruction lies in [0, 1].
 *
 * Every encoder parameter is named `encoder.…` and every decoder parameter
 * `decoder.…`: stage 2 of S2SNet training freezes the encoder by this prefix.
 */
export const ENCODER_PREFIX = 'encoder.';
export const DECODER_PREFIX = 'decoder.';

export interface SegNetConfig extends Geometry {
  name?: string;
  /** channels of each encoder stage, outermost first */
  widths: number[];
  /** conv blocks in each stage (same for the mirrored decoder stage) */
  convs: number[];
  seed?: number;
}

/** The original: VGG-16's 13 convolutions in 5 stages, 224×224 RGB. */
export const SEGNET: Omit<SegNetConfig, 'seed'> = { name: 'segnet', channels: 3, height: 224, width: 224, widths: [64, 128, 256, 512, 512], convs: [2, 2, 3, 3, 3] };

/** For 28×28 grey images: two stages, 28 → 14 → 7 and back. */
export const SEGNET_SMALL: Omit<SegNetConfig, 'seed'> = { name: 'segnet-small', channels: 1, height: 28, width: 28, widths: [32, 64], convs: [2, 2] };

export function buildSegNet(cfg: SegNetConfig): Graph {
  const name = cfg.name ?? 'segnet';
  checkGeometry(name, cfg);
  const stages = cfg.widths.length;
  if (stages === 0 || cfg.convs.length !== stages) {
    throw new UserError(`${name}: need one conv count per stage (widths [${cfg.widths}], convs [${cfg.convs}])`);
  }
  if (cfg.convs.some((n) => !Number.isInteger(n) || n < 1) || cfg.widths.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new UserError(`${name}: widths and conv counts must be positive integers`);
  }
  let h = cfg.height;
  let w = cfg.width;
  for (let s = 0; s < stages; s++) {
    if (h < 2 || w < 2) throw new UserError(`${name}: ${stages} pooling stages do not fit a ${cfg.height}×${cfg.width} input (stage ${s + 1} sees ${h}×${w})`);
    h = pooledSize(h, 2, 2);
    w = pooledSize(w, 2, 2);
  }

  const b = new GraphBuilder(name, { seed: cfg.seed ?? 0 });
  let x = b.input('input', ['N', cfg.channels, cfg.height, cfg.width]);
  const pooled: { before: string; indices: string }[] = [];
  for (let s = 1; s <= stages; s++) {
    for (let j = 1; j <= cfg.convs[s - 1]; j++) {
      x = convBn(b, x, { out: cfg.widths[s - 1], kernel: 3, bias: true, conv: `encoder.conv${s}_${j}`, bn: `encoder.bn${s}_${j}` });
    }
    const p = b.maxPoolWithIndices(x, { kernel: 2, stride: 2, name: `encoder.pool${s}` });
    pooled.push({ before: x, indices: p.indices });
    x = p.output;
  }
  for (let s = stages; s >= 1; s--) {
    const { before, indices } = pooled[s - 1];
    x = b.maxUnpool(x, indices, { kernel: 2, stride: 2, like: before, name: `decoder.unpool${s}` });
    for (let j = cfg.convs[s - 1]; j >= 1; j--) {
      const conv = `decoder.conv${s}_${j}`;
      if (j > 1) {
        x = convBn(b, x, { out: cfg.widths[s - 1], kernel: 3, bias: true, conv, bn: `decoder.bn${s}_${j}` });
      } else if (s > 1) {
        x = convBn(b, x, { out: cfg.widths[s - 2], kernel: 3, bias: true, conv, bn: `decoder.bn${s}_${j}` });
      } else {
        x = b.sigmoid(b.conv(x, { out: cfg.channels, kernel: 3, init: 'glorot', name: conv }), 'decoder.sigmoid');
      }
    }
  }
  b.output(x, 'reconstruction');
  return b.build();
}
