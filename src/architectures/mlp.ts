import { GraphBuilder } from '../onnx/builder';
import { Graph } from '../onnx/graph';
import { Geometry, checkGeometry } from './options';

/**
 * A multilayer perceptron on the flattened image: no convolution and no
 * pooling, so the transferability matrix has one member built unlike the CNNs.
 */
export interface MlpConfig extends Geometry {
  name: string;
  hidden: number[];
  classes: number;
  seed?: number;
}

export function buildMlp(cfg: MlpConfig): Graph {
  checkGeometry(cfg.name, cfg);
  const b = new GraphBuilder(cfg.name, { seed: cfg.seed ?? 0 });
  let x = b.flatten(b.input('input', ['N', cfg.channels, cfg.height, cfg.width]), 1, 'flatten');
  cfg.hidden.forEach((units, i) => {
    x = b.relu(b.linear(x, { out: units, name: `fc${i + 1}` }), `relu${i + 1}`);
  });
  b.output(b.linear(x, { out: cfg.classes, init: 'glorot', name: `fc${cfg.hidden.length + 1}` }), 'logits');
  return b.build();
}
