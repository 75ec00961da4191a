/**
 * Learning rate as a pure function of the update index, so a resumed run
 * needs nothing but the step counter to continue the schedule.
 *
 * - constant: lr
 * - step: lr · gamma^floor(t / stepSize)
 * - cosine: from lr down to minLr over totalSteps (after warmup), then minLr
 * Any of them may start with `warmupSteps` of linear warmup from lr/warmupSteps
 * up to lr (the schedule proper starts counting after the warmup).
 */
export type LrSchedule =
  | { kind: 'constant'; lr: number; warmupSteps?: number }
  | { kind: 'step'; lr: number; stepSize: number; gamma?: number; warmupSteps?: number }
  | { kind: 'cosine'; lr: number; totalSteps: number; minLr?: number; warmupSteps?: number };

/** Learning rate for update number `t` (0-based: the first update uses t = 0). */
export function learningRate(s: LrSchedule, t: number): number {
  const warm = s.warmupSteps ?? 0;
  if (t < warm) return (s.lr * (t + 1)) / warm;
  const u = t - warm;
  switch (s.kind) {
    case 'constant':
      return s.lr;
    case 'step':
      return s.lr * Math.pow(s.gamma ?? 0.1, Math.floor(u / s.stepSize));
    case 'cosine': {
      const min = s.minLr ?? 0;
      const span = Math.max(1, s.totalSteps - warm);
      if (u >= span) return min;
      return min + ((s.lr - min) * (1 + Math.cos((Math.PI * u) / span))) / 2;
    }
  }
}

/** Parses the CLI form: `constant`, `step:SIZE[:GAMMA]`, `cosine` (with lr, total steps and warmup given separately). */
export function parseSchedule(spec: string, lr: number, totalSteps: number, warmupSteps = 0): LrSchedule {
  const [kind, a, b] = spec.split(':');
  if (!(lr > 0)) throw new Error(`learning rate must be positive, got ${lr}`);
  switch (kind) {
    case 'constant':
      return { kind, lr, warmupSteps };
    case 'step': {
      const stepSize = Number(a);
      if (!Number.isInteger(stepSize) || stepSize <= 0) throw new Error(`schedule '${spec}': expected step:SIZE[:GAMMA] with a positive integer SIZE`);
      const gamma = b === undefined ? 0.1 : Number(b);
      if (!(gamma > 0)) throw new Error(`schedule '${spec}': GAMMA must be positive`);
      return { kind, lr, stepSize, gamma, warmupSteps };
    }
    case 'cosine':
      return { kind, lr, totalSteps, minLr: a === undefined ? 0 : Number(a), warmupSteps };
    default:
      throw new Error(`unknown learning-rate schedule '${spec}' (expected constant, step:SIZE[:GAMMA] or cosine[:MIN_LR])`);
  }
}
