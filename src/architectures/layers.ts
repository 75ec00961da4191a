import { GraphBuilder, Init } from '../onnx/builder';

/**
 * The conv → BatchNorm → ReLU unit most of the families are made of. The conv
 * has no bias unless asked: BN's shift makes it redundant (torchvision's
 * choice for ResNet); `bias: true` reproduces nets that kept it (VGG-BN, SegNet).
 */
export interface ConvBnOptions {
  out: number;
  kernel: number;
  stride?: number;
  pad?: number;
  bias?: boolean;
  relu?: boolean;
  init?: Init;
  conv: string;
  bn: string;
}

export function convBn(b: GraphBuilder, x: string, o: ConvBnOptions): string {
  const y = b.conv(x, { out: o.out, kernel: o.kernel, stride: o.stride ?? 1, pad: o.pad ?? Math.floor(o.kernel / 2), bias: o.bias ?? false, init: o.init, name: o.conv });
  const n = b.batchNorm(y, { name: o.bn });
  return o.relu === false ? n : b.relu(n, `${o.bn}.relu`);
}
