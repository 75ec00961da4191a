"""
PyTorch side of bench/training-vs-torch.ts (not a test).

Rebuilds a model from the graph the TypeScript side exported (nodes and
attributes as JSON, every initializer as raw float32/int64 bytes) and runs the
same training step on it with torch: each ONNX node is executed by the torch
function that does the same thing, so the architecture, the weights, the
batch and the loss are ours; only the engine differs. BatchNorm layers whose
scale/bias train use batch statistics (torch's training mode), as our training
graphs do.

Protocol on stdin/stdout, one JSON line per command:
  step  -> {"cpuMs", "wallMs", "loss"}   one training step (mode "step": forward,
                                         backward, AdamW) or forward+backward
                                         (mode "fwdbwd": no update)
  quit  -> {"maxRssKb"}                  peak resident memory of this process

  python3 bench/training-torch.py DIR      (DIR holds model.json, tensors.bin, batch.bin)
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(dirname):
    with open(os.path.join(dirname, 'model.json')) as f:
        spec = json.load(f)
    blob = open(os.path.join(dirname, 'tensors.bin'), 'rb').read()
    tensors = {}
    for name, t in spec['tensors'].items():
        dtype = np.float32 if t['dtype'] == 'float32' else np.int64
        count = int(np.prod(t['dims'])) if t['dims'] else 1
        a = np.frombuffer(blob, dtype=dtype, count=count, offset=t['offset']).reshape(t['dims'])
        tensors[name] = torch.from_numpy(a.copy())
    batch = open(os.path.join(dirname, 'batch.bin'), 'rb').read()
    n, shape = spec['batch'], spec['imageShape']
    count = n * int(np.prod(shape))
    images = torch.from_numpy(np.frombuffer(batch, dtype=np.float32, count=count).reshape([n] + shape).copy())
    labels = None
    if spec['loss'] == 'cross-entropy':
        labels = torch.from_numpy(np.frombuffer(batch, dtype=np.int64, count=n, offset=count * 4).copy())
    return spec, tensors, images, labels


def pads2d(a):
    p = a.get('pads', [0, 0, 0, 0])
    if p[0] != p[2] or p[1] != p[3]:
        raise ValueError(f'asymmetric pads {p} are not supported here')
    return (p[0], p[1])


class Interpreter:
    def __init__(self, spec, tensors):
        self.spec = spec
        trainable = set(spec['params'])
        self.params = {k: torch.nn.Parameter(v) for k, v in tensors.items() if k in trainable}
        self.consts = {k: v for k, v in tensors.items() if k not in trainable}

    def forward(self, image):
        env = dict(self.consts)
        env.update(self.params)
        env[self.spec['imageInput']] = image
        trainable = self.params
        for node in self.spec['nodes']:
            op, a = node['op'], node['attrs']
            ins = [env[i] if i else None for i in node['inputs']]
            outs = node['outputs']
            if op == 'Conv':
                y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=tuple(a.get('strides', [1, 1])),
                             padding=pads2d(a), dilation=tuple(a.get('dilations', [1, 1])), groups=a.get('group', 1))
            elif op == 'BatchNormalization':
                x, scale, bias, mean, var = ins
                train = node['inputs'][1] in trainable or node['inputs'][2] in trainable
                # ONNX momentum m is PyTorch's 1 - m
                y = F.batch_norm(x, mean, var, scale, bias, training=train, momentum=1 - a.get('momentum', 0.9), eps=a.get('epsilon', 1e-5))
            elif op == 'Relu':
                y = F.relu(ins[0])
            elif op == 'Sigmoid':
                y = torch.sigmoid(ins[0])
            elif op == 'MaxPool':
                k, s = tuple(a['kernel_shape']), tuple(a.get('strides', a['kernel_shape']))
                ceil = bool(a.get('ceil_mode', 0))
                if len(outs) > 1 and outs[1]:
                    y, idx = F.max_pool2d(ins[0], k, s, pads2d(a), ceil_mode=ceil, return_indices=True)
                    env[outs[1]] = idx  # torch's per-plane indices, read only by MaxUnpool below
                    env[outs[0]] = y
                    continue
                y = F.max_pool2d(ins[0], k, s, pads2d(a), ceil_mode=ceil)
            elif op == 'MaxUnpool':
                k, s = tuple(a['kernel_shape']), tuple(a.get('strides', a['kernel_shape']))
                size = [int(d) for d in ins[2].tolist()] if len(ins) > 2 and ins[2] is not None else None
                y = F.max_unpool2d(ins[0], ins[1], k, s, pads2d(a), output_size=size)
            elif op == 'Gemm':
                w = ins[1].t() if a.get('transB', 0) else ins[1]
                xa = ins[0].t() if a.get('transA', 0) else ins[0]
                y = xa @ w
                if len(ins) > 2 and ins[2] is not None:
                    y = y + ins[2]
            elif op == 'Flatten':
                y = torch.flatten(ins[0], a.get('axis', 1))
            elif op == 'GlobalAveragePool':
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif op == 'Add':
                y = ins[0] + ins[1]
            elif op == 'Mul':
                y = ins[0] * ins[1]
            elif op == 'Sub':
                y = ins[0] - ins[1]
            elif op == 'Div':
                y = ins[0] / ins[1]
            elif op == 'Reshape':
                shape = [int(d) for d in ins[1].tolist()]
                shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
                y = ins[0].reshape(shape)
            elif op == 'Shape':
                y = torch.tensor(list(ins[0].shape), dtype=torch.int64)
            elif op == 'Identity':
                y = ins[0]
            else:
                raise ValueError(f'torch rebuild: op {op} is not mapped')
            env[outs[0]] = y
        return env

    def loss(self, env, images, labels):
        out = env[self.spec['lossOutput']]
        if self.spec['loss'] == 'cross-entropy':
            return F.cross_entropy(out, labels)
        return F.mse_loss(out, images)


def main():
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    spec, tensors, images, labels = load(sys.argv[1])
    model = Interpreter(spec, tensors)
    opt = None
    if spec['mode'] == 'step':
        o = spec['optimizer']
        opt = torch.optim.AdamW(list(model.params.values()), lr=spec['lr'], betas=(o['beta1'], o['beta2']), eps=o['epsilon'], weight_decay=o['weightDecay'])
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == 'step' and os.environ.get('TORCH_PROFILE'):
            with torch.autograd.profiler.profile() as prof:
                for p in model.params.values():
                    p.grad = None
                loss = model.loss(model.forward(images), images, labels)
                loss.backward()
            sys.stderr.write(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=12) + '\n')
            print(json.dumps({'cpuMs': 0, 'wallMs': 0, 'loss': float(loss)}), flush=True)
        elif cmd == 'step':
            c0, w0 = time.process_time(), time.perf_counter()
            for p in model.params.values():
                p.grad = None
            loss = model.loss(model.forward(images), images, labels)
            loss.backward()
            if opt is not None:
                opt.step()
            c1, w1 = time.process_time(), time.perf_counter()
            print(json.dumps({'cpuMs': (c1 - c0) * 1000, 'wallMs': (w1 - w0) * 1000, 'loss': float(loss)}), flush=True)
        elif cmd == 'quit':
            print(json.dumps({'maxRssKb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
            return


if __name__ == '__main__':
    main()
