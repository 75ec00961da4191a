import * as ort from 'onnxruntime-node';
import type { Graph } from '../onnx/graph';
import type { ProviderChoice } from '../runtime/providers';
import { ModelSession, RuntimeLogger, createSession } from '../runtime/session';
import type { DrawRunner } from './sampler';

/** A base classifier h in one ORT session: noisy images in, class indices out. */
export interface BaseSession {
  session: ModelSession;
  /** [C, H, W] */
  shape: [number, number, number];
  run: DrawRunner;
}

export async function openBaseSession(
  h: Graph,
  shape: [number, number, number],
  opts: { provider?: ProviderChoice; intraOpThreads?: number; label: string; logger?: RuntimeLogger; allowSpinning?: boolean },
): Promise<BaseSession> {
  const session = await createSession(h, { provider: opts.provider ?? 'cpu', intraOpThreads: opts.intraOpThreads ?? 0, label: opts.label, logger: opts.logger, allowSpinning: opts.allowSpinning });
  const run: DrawRunner = async (noisy, count) => {
    const out = await session.run({ input: new ort.Tensor('float32', noisy, [count, ...shape]) }, ['prediction']);
    return out.prediction.data as BigInt64Array;
  };
  return { session, shape, run };
}
