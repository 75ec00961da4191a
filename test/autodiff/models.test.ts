import { architectureNames, buildArchitecture } from '../../src/architectures/architectures';
import { GraphBuilder } from '../../src/onnx/builder';
import { Graph } from '../../src/onnx/graph';
import { Rng } from '../../src/util/random';
import { expectAccurate, gradCheck, randomTensor } from './gradcheck';

/**
 * Whole-model gradient checks on a ResNet-50-shaped classifier and a SegNet
 * autoencoder with random weights, in float32 (ORT has no double Conv), with
 * the kinks frozen at the evaluation point (gradcheck's `linearize`).
 */

/** BatchNorm with non-trivial random statistics, so the rule is exercised beyond the identity. */
function randomizeBatchNorms(g: Graph, rng: Rng): void {
  for (const [name, t] of g.initializers) {
    const d = t.data as Float32Array;
    if (name.endsWith('.running_var')) for (let i = 0; i < d.length; i++) d[i] = 0.5 + rng.uniform();
    else if (name.endsWith('.running_mean') || (name.endsWith('.bias') && g.nodes.some((n) => n.opType === 'BatchNormalization' && n.inputs[2] === name)))
      for (let i = 0; i < d.length; i++) d[i] = 0.1 * rng.normal();
    else if (name.endsWith('.weight') && g.nodes.some((n) => n.opType === 'BatchNormalization' && n.inputs[1] === name))
      for (let i = 0; i < d.length; i++) d[i] = 0.5 + 0.5 * rng.uniform();
  }
}

/** ResNet-50: 7×7/2 stem, 3×3/2 max pool, bottleneck stages [3, 4, 6, 3], global pool, linear. */
export function resnet50(classes: number, hw: number): Graph {
  const b = new GraphBuilder('resnet50', { seed: 50 });
  const x = b.input('input', ['N', 3, hw, hw]);
  const convBn = (v: string, out: number, kernel: number, stride: number, name: string, relu = true) => {
    const y = b.batchNorm(b.conv(v, { out, kernel, stride, bias: false, name }), { name: `${name}.bn` });
    return relu ? b.relu(y) : y;
  };
  let h = convBn(x, 64, 7, 2, 'conv1');
  h = b.maxPool(h, { kernel: 3, stride: 2, pad: 1 });
  [3, 4, 6, 3].forEach((blocks, stage) => {
    const width = 64 * 2 ** stage;
    for (let i = 0; i < blocks; i++) {
      const stride = i === 0 && stage > 0 ? 2 : 1;
      const name = `layer${stage + 1}.${i}`;
      let y = convBn(h, width, 1, 1, `${name}.conv1`);
      y = convBn(y, width, 3, stride, `${name}.conv2`);
      y = convBn(y, width * 4, 1, 1, `${name}.conv3`, false);
      const shortcut = i === 0 ? convBn(h, width * 4, 1, stride, `${name}.downsample`, false) : h;
      h = b.relu(b.add(y, shortcut));
    }
  });
  h = b.flatten(b.globalAvgPool(h));
  b.output(b.linear(h, { out: classes, name: 'fc' }), 'logits');
  const g = b.build();
  randomizeBatchNorms(g, new Rng(51));
  return g;
}

/** SegNet: encoder conv-bn-relu stages with index-keeping max pools, decoder unpooling with those indices. */
export function segnet(hw: number): Graph {
  const b = new GraphBuilder('segnet', { seed: 7 });
  const x = b.input('input', ['N', 1, hw, hw]);
  const cbr = (v: string, out: number, name: string) => b.relu(b.batchNorm(b.conv(v, { out, kernel: 3, name }), { name: `${name}.bn` }));
  const e1 = cbr(x, 8, 'enc1');
  const p1 = b.maxPoolWithIndices(e1, { kernel: 2, stride: 2 });
  const e2 = cbr(p1.output, 16, 'enc2');
  const p2 = b.maxPoolWithIndices(e2, { kernel: 2, stride: 2 });
  const d2 = cbr(b.maxUnpool(p2.output, p2.indices, { kernel: 2, stride: 2, like: e2 }), 8, 'dec2');
  const d1 = cbr(b.maxUnpool(d2, p1.indices, { kernel: 2, stride: 2, like: e1 }), 8, 'dec1');
  b.output(b.sigmoid(b.conv(d1, { out: 1, kernel: 3, name: 'out' })), 'reconstruction');
  const g = b.build();
  randomizeBatchNorms(g, new Rng(8));
  return g;
}

describe('whole-model gradients', () => {
  test('ResNet-50 classifier (1×3×64×64): input and parameters at several depths', async () => {
    const g = resnet50(10, 64);
    const rng = new Rng(1);
    const results = await gradCheck({
      graph: g,
      feeds: { input: randomTensor(rng, [1, 3, 64, 64]) },
      wrt: ['input', 'conv1.weight', 'layer2.0.conv2.weight', 'layer3.5.conv3.bn.weight', 'layer4.2.conv1.weight', 'fc.weight', 'fc.bias'],
      coords: 6,
      linearize: true,
    });
    expectAccurate(results);
  }, 240000);

  test('SegNet autoencoder (2×1×28×28, odd unpooling sizes too)', async () => {
    for (const hw of [28, 14 + 1]) {
      const g = segnet(hw);
      const rng = new Rng(hw);
      const results = await gradCheck({
        graph: g,
        feeds: { input: randomTensor(rng, [2, 1, hw, hw]) },
        wrt: ['input', 'enc1.weight', 'enc2.bn.bias', 'dec2.weight', 'out.bias'],
        coords: 10,
        linearize: true,
        eps: 0.01, // the output sigmoid is smooth, not linear: a small step keeps its truncation error below 1e-4
      });
      expectAccurate(results);
    }
  });

  // The project's own architectures (src/architectures), at their small default geometry.
  const small = architectureNames().filter((n) => !['segnet', 'resnet50'].includes(n));
  test.each(small)('%s from the architecture registry', async (name) => {
    const g = buildArchitecture(name, { seed: 3 });
    const shape = g.inputs[0].shape!.map((d) => (typeof d === 'number' ? d : 2));
    const params = [...g.initializers.keys()].filter((k) => /weight$/.test(k));
    const results = await gradCheck({
      graph: g,
      feeds: { input: randomTensor(new Rng(4), shape) },
      wrt: ['input', params[0], params[Math.floor(params.length / 2)], params[params.length - 1]],
      coords: 4,
      linearize: true,
      eps: g.nodes.some((n) => n.opType === 'Sigmoid') ? 0.01 : undefined,
    });
    expectAccurate(results);
  });
});
