import { GraphBuilder } from '../onnx/builder';
import { Graph } from '../onnx/graph';
import { convBn } from './layers';
import { Geometry, checkGeometry } from './options';

/**
 * Residual networks (He et al. 2016) with torchvision's parameter names
 * (conv1, bn1, layer{i}.{k}.conv1, …, downsample.0/.1, fc), so weights can be
 * moved between the two by name.
 *
 * - `resnet50`: the ImageNet ResNet-50 — 7×7/2 stem, 3×3/2 max-pool, bottleneck
 *   blocks [3, 4, 6, 3] at widths 64…512 (×4 expansion), stride on the 3×3
 *   conv (torchvision's "v1.5"), global average pool, fc. 25,557,032 trained
 *   parameters at 1000 classes, as torchvision reports.
 * - `resnet-small`: the CIFAR layout (ResNet-20): 3×3 stem, no max-pool,
 *   basic blocks [3, 3, 3] at widths 16/32/64, for 28×28 images.
 */
export interface ResNetConfig extends Geometry {
  name: string;
  block: 'basic' | 'bottleneck';
  layers: number[];
  widths: number[];
  stem: 'imagenet' | 'cifar';
  classes: number;
  seed?: number;
}

function basic(b: GraphBuilder, x: string, p: string, out: number, stride: number): string {
  let y = convBn(b, x, { out, kernel: 3, stride, conv: `${p}.conv1`, bn: `${p}.bn1` });
  y = convBn(b, y, { out, kernel: 3, conv: `${p}.conv2`, bn: `${p}.bn2`, relu: false });
  const shortcut = stride !== 1 || b.dim(x, 1) !== out ? convBn(b, x, { out, kernel: 1, stride, pad: 0, conv: `${p}.downsample.0`, bn: `${p}.downsample.1`, relu: false }) : x;
  return b.relu(b.add(y, shortcut, `${p}.add`), `${p}.relu`);
}

function bottleneck(b: GraphBuilder, x: string, p: string, width: number, stride: number): string {
  const out = width * 4;
  let y = convBn(b, x, { out: width, kernel: 1, pad: 0, conv: `${p}.conv1`, bn: `${p}.bn1` });
  y = convBn(b, y, { out: width, kernel: 3, stride, conv: `${p}.conv2`, bn: `${p}.bn2` });
  y = convBn(b, y, { out, kernel: 1, pad: 0, conv: `${p}.conv3`, bn: `${p}.bn3`, relu: false });
  const shortcut = stride !== 1 || b.dim(x, 1) !== out ? convBn(b, x, { out, kernel: 1, stride, pad: 0, conv: `${p}.downsample.0`, bn: `${p}.downsample.1`, relu: false }) : x;
  return b.relu(b.add(y, shortcut, `${p}.add`), `${p}.relu`);
}

export function buildResNet(cfg: ResNetConfig): Graph {
  checkGeometry(cfg.name, cfg);
  const b = new GraphBuilder(cfg.name, { seed: cfg.seed ?? 0 });
  let x = b.input('input', ['N', cfg.channels, cfg.height, cfg.width]);
  if (cfg.stem === 'imagenet') {
    x = convBn(b, x, { out: 64, kernel: 7, stride: 2, pad: 3, conv: 'conv1', bn: 'bn1' });
    x = b.maxPool(x, { kernel: 3, stride: 2, pad: 1, name: 'maxpool' });
  } else {
    x = convBn(b, x, { out: cfg.widths[0], kernel: 3, conv: 'conv1', bn: 'bn1' });
  }
  cfg.layers.forEach((blocks, i) => {
    for (let k = 0; k < blocks; k++) {
      const stride = k === 0 && i > 0 ? 2 : 1;
      const p = `layer${i + 1}.${k}`;
      x = cfg.block === 'basic' ? basic(b, x, p, cfg.widths[i], stride) : bottleneck(b, x, p, cfg.widths[i], stride);
    }
  });
  x = b.flatten(b.globalAvgPool(x, 'avgpool'), 1, 'flatten');
  b.output(b.linear(x, { out: cfg.classes, init: 'glorot', name: 'fc' }), 'logits');
  return b.build();
}
