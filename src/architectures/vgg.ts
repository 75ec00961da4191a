import { GraphBuilder } from '../onnx/builder';
import { Graph } from '../onnx/graph';
import { UserError } from '../util/errors';
import { convBn } from './layers';
import { Geometry, checkGeometry, pooledSize } from './options';

/**
 * VGG-style (Simonyan & Zisserman 2015, with BatchNorm): stacks of 3×3
 * conv + BN + ReLU, a 2×2 max-pool after each stage, then two fully connected
 * layers. `vgg-small` uses stages of 2 convs at 32/64/128 channels
 * (28 → 14 → 7 → 3) and a 256-unit hidden layer.
 */
export interface VggConfig extends Geometry {
  name: string;
  widths: number[];
  convsPerStage: number;
  hidden: number;
  classes: number;
  seed?: number;
}

export function buildVgg(cfg: VggConfig): Graph {
  checkGeometry(cfg.name, cfg);
  let side = Math.min(cfg.height, cfg.width);
  for (let s = 0; s < cfg.widths.length; s++) {
    if (side < 2) throw new UserError(`${cfg.name}: ${cfg.widths.length} pooling stages do not fit a ${cfg.height}×${cfg.width} input`);
    side = pooledSize(side, 2, 2);
  }
  const b = new GraphBuilder(cfg.name, { seed: cfg.seed ?? 0 });
  let x = b.input('input', ['N', cfg.channels, cfg.height, cfg.width]);
  cfg.widths.forEach((width, i) => {
    for (let j = 1; j <= cfg.convsPerStage; j++) {
      x = convBn(b, x, { out: width, kernel: 3, bias: true, conv: `features.conv${i + 1}_${j}`, bn: `features.bn${i + 1}_${j}` });
    }
    x = b.maxPool(x, { kernel: 2, stride: 2, name: `features.pool${i + 1}` });
  });
  x = b.flatten(x, 1, 'flatten');
  x = b.relu(b.linear(x, { out: cfg.hidden, name: 'classifier.fc1' }), 'classifier.relu1');
  b.output(b.linear(x, { out: cfg.classes, init: 'glorot', name: 'classifier.fc2' }), 'logits');
  return b.build();
}
