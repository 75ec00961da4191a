import { UserError } from '../util/errors';

/** What every builder in the registry accepts; unset fields take the architecture's defaults. */
export interface ArchitectureOptions {
  /** seed of the weight initialisation */
  seed?: number;
  /** number of output classes (classifiers) */
  classes?: number;
  channels?: number;
  height?: number;
  width?: number;
}

export type Geometry = { channels: number; height: number; width: number };

export function checkGeometry(arch: string, g: Geometry): void {
  for (const k of ['channels', 'height', 'width'] as const) {
    const v = g[k];
    if (!Number.isInteger(v) || v < 1) throw new UserError(`${arch}: ${k} must be a positive integer, got ${v}`);
  }
}

/** Spatial size after a pooling window (floor mode, as ONNX's default). */
export function pooledSize(size: number, kernel: number, stride: number, pad = 0): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}
