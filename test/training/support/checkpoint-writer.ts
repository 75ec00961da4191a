/**
 * Child process for the atomicity test: saves checkpoints to one path in a
 * loop, alternating two distinguishable versions (every value of version k
 * equals k), until it is killed. Prints "ready" after the first save.
 */
import { saveCheckpoint } from '../../../src/training/checkpoint';
import { floatTensor } from '../../../src/onnx/tensor';

const path = process.argv[2];
const n = 1 << 21; // 8 MiB per tensor, so a kill often lands in the middle of a write

function version(k: number) {
  const t = floatTensor([n]);
  (t.data as Float32Array).fill(k);
  return {
    step: k,
    epoch: 0,
    batchInEpoch: k,
    rng: null,
    optimizer: { kind: 'sgd' as const },
    params: new Map([['w', t]]),
    optimizerState: new Map([['w.momentum', t]]),
    buffers: new Map(),
    metadata: { version: String(k) },
  };
}

const versions = [version(1), version(2)];
let i = 0;
for (;;) {
  saveCheckpoint(path, versions[i % 2]);
  if (i === 0) process.stdout.write('ready\n');
  i++;
}
