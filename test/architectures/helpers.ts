import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph } from '../../src/onnx/graph';
import { saveModel } from '../../src/onnx/io';
import { floatTensor } from '../../src/onnx/tensor';
import { ModelSession, createSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';

/** Saves the graph to a temporary .onnx file and opens that file in onnxruntime-node (CPU). */
export async function saveAndLoad(g: Graph): Promise<ModelSession> {
  const dir = mkdtempSync(join(tmpdir(), 'arch-'));
  try {
    const path = join(dir, `${g.name}.onnx`);
    saveModel(g, path);
    return await createSession(path, { provider: 'cpu', label: g.name });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Uniform [0,1) images, the range every graph input is defined on. */
export function randomImages(dims: number[], seed = 1) {
  const t = floatTensor(dims);
  const r = new Rng(seed);
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] = r.uniform();
  return t;
}

export function range(data: ArrayLike<number>): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    min = Math.min(min, data[i]);
    max = Math.max(max, data[i]);
  }
  return [min, max];
}
