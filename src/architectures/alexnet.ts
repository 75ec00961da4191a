import { GraphBuilder } from '../onnx/builder';
import { Graph } from '../onnx/graph';
import { UserError } from '../util/errors';
import { Geometry, checkGeometry, pooledSize } from './options';

/**
 * AlexNet-style (Krizhevsky et al. 2012), scaled to small images: five convs
 * without BatchNorm, large 5×5 kernels up front, overlapping 3×3/2 max-pools,
 * and a wide two-layer fully connected head. The original's LRN is left out,
 * as torchvision does. At 28×28 the map goes 28 → 13 → 6 → 2.
 */
export interface AlexNetConfig extends Geometry {
  name: string;
  /** channels of conv1…conv5 */
  widths: [number, number, number, number, number];
  hidden: number;
  classes: number;
  seed?: number;
}

export function buildAlexNet(cfg: AlexNetConfig): Graph {
  checkGeometry(cfg.name, cfg);
  let side = Math.min(cfg.height, cfg.width);
  for (let p = 0; p < 3; p++) side = pooledSize(side, 3, 2);
  if (side < 1) throw new UserError(`${cfg.name}: a ${cfg.height}×${cfg.width} input is too small for three 3×3/2 pools (needs at least 15×15)`);

  const b = new GraphBuilder(cfg.name, { seed: cfg.seed ?? 0 });
  const [w1, w2, w3, w4, w5] = cfg.widths;
  let x = b.input('input', ['N', cfg.channels, cfg.height, cfg.width]);
  x = b.relu(b.conv(x, { out: w1, kernel: 5, name: 'features.conv1' }), 'features.relu1');
  x = b.maxPool(x, { kernel: 3, stride: 2, name: 'features.pool1' });
  x = b.relu(b.conv(x, { out: w2, kernel: 5, name: 'features.conv2' }), 'features.relu2');
  x = b.maxPool(x, { kernel: 3, stride: 2, name: 'features.pool2' });
  x = b.relu(b.conv(x, { out: w3, kernel: 3, name: 'features.conv3' }), 'features.relu3');
  x = b.relu(b.conv(x, { out: w4, kernel: 3, name: 'features.conv4' }), 'features.relu4');
  x = b.relu(b.conv(x, { out: w5, kernel: 3, name: 'features.conv5' }), 'features.relu5');
  x = b.maxPool(x, { kernel: 3, stride: 2, name: 'features.pool5' });
  x = b.flatten(x, 1, 'flatten');
  x = b.relu(b.linear(x, { out: cfg.hidden, name: 'classifier.fc1' }), 'classifier.relu1');
  x = b.relu(b.linear(x, { out: cfg.hidden, name: 'classifier.fc2' }), 'classifier.relu2');
  b.output(b.linear(x, { out: cfg.classes, init: 'glorot', name: 'classifier.fc3' }), 'logits');
  return b.build();
}
