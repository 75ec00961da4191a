import { Graph } from '../onnx/graph';
import { UserError } from '../util/errors';
import { buildAlexNet } from './alexnet';
import { buildMlp } from './mlp';
import { ArchitectureOptions } from './options';
import { buildResNet } from './resnet';
import { SEGNET, SEGNET_SMALL, buildSegNet } from './segnet';
import { buildVgg } from './vgg';

/**
 * Every architecture the project can build by name. Classifiers take `input`
 * [N,C,H,W] in [0,1] and give `logits` [N,classes]; autoencoders give
 * `reconstruction` [N,C,H,W] in [0,1]. Options override the defaults listed
 * here (e.g. `segnet` at 32×32 grey, `resnet50` with 10 classes).
 */
export interface Architecture {
  name: string;
  kind: 'classifier' | 'autoencoder';
  description: string;
  defaults: { channels: number; height: number; width: number; classes?: number };
  build(opts?: ArchitectureOptions): Graph;
}

type Resolved = { seed: number; channels: number; height: number; width: number; classes: number };

function define(a: Omit<Architecture, 'build'>, make: (o: Resolved) => Graph): Architecture {
  return {
    ...a,
    build: (opts = {}) =>
      make({
        seed: opts.seed ?? 0,
        channels: opts.channels ?? a.defaults.channels,
        height: opts.height ?? a.defaults.height,
        width: opts.width ?? a.defaults.width,
        classes: opts.classes ?? a.defaults.classes ?? 0,
      }),
  };
}

const SMALL = { channels: 1, height: 28, width: 28, classes: 10 };

const list: Architecture[] = [
  define(
    { name: 'segnet', kind: 'autoencoder', description: 'SegNet: VGG-16 encoder (13 convs, 5 stages 64…512), mirrored decoder with max-unpooling', defaults: { channels: 3, height: 224, width: 224 } },
    (o) => buildSegNet({ ...SEGNET, ...o }),
  ),
  define(
    { name: 'segnet-small', kind: 'autoencoder', description: 'SegNet with 2 stages of 2 convs at 32/64 channels, for 28×28 grey', defaults: { channels: 1, height: 28, width: 28 } },
    (o) => buildSegNet({ ...SEGNET_SMALL, ...o }),
  ),
  define(
    { name: 'resnet-small', kind: 'classifier', description: 'ResNet-20 (CIFAR layout): basic blocks [3,3,3] at 16/32/64 channels', defaults: SMALL },
    (o) => buildResNet({ name: 'resnet-small', block: 'basic', layers: [3, 3, 3], widths: [16, 32, 64], stem: 'cifar', ...o }),
  ),
  define(
    { name: 'vgg-small', kind: 'classifier', description: 'VGG-style with BatchNorm: 3 stages of 2 convs at 32/64/128, fc 256', defaults: SMALL },
    (o) => buildVgg({ name: 'vgg-small', widths: [32, 64, 128], convsPerStage: 2, hidden: 256, ...o }),
  ),
  define(
    { name: 'alexnet-small', kind: 'classifier', description: 'AlexNet-style: 5×5 convs, overlapping 3×3/2 max-pools, no BatchNorm, fc 512-512', defaults: SMALL },
    (o) => buildAlexNet({ name: 'alexnet-small', widths: [64, 128, 192, 192, 128], hidden: 512, ...o }),
  ),
  define(
    { name: 'mlp', kind: 'classifier', description: 'multilayer perceptron 512-256 on the flattened image', defaults: SMALL },
    (o) => buildMlp({ name: 'mlp', hidden: [512, 256], ...o }),
  ),
  define(
    { name: 'resnet50', kind: 'classifier', description: 'ResNet-50 (torchvision layout): 7×7/2 stem, 3×3/2 max-pool, bottlenecks [3,4,6,3]', defaults: { channels: 3, height: 224, width: 224, classes: 1000 } },
    (o) => buildResNet({ name: 'resnet50', block: 'bottleneck', layers: [3, 4, 6, 3], widths: [64, 128, 256, 512], stem: 'imagenet', ...o }),
  ),
];

export const ARCHITECTURES: ReadonlyMap<string, Architecture> = new Map(list.map((a) => [a.name, a]));

export function architectureNames(kind?: Architecture['kind']): string[] {
  return list.filter((a) => !kind || a.kind === kind).map((a) => a.name);
}

export function getArchitecture(name: string): Architecture {
  const a = ARCHITECTURES.get(name);
  if (!a) throw new UserError(`unknown architecture '${name}' (known: ${architectureNames().join(', ')})`);
  return a;
}

export function buildArchitecture(name: string, opts: ArchitectureOptions = {}): Graph {
  const a = getArchitecture(name);
  if (a.kind === 'classifier' && opts.classes !== undefined && (!Number.isInteger(opts.classes) || opts.classes < 2)) {
    throw new UserError(`${name}: classes must be an integer ≥ 2, got ${opts.classes}`);
  }
  return a.build(opts);
}
