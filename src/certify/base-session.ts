import * as ort from 'onnxruntime-node';
import type { Graph } from '../onnx/graph';
import type { ProviderChoice } from '../runtime/providers';
import { ModelSession, RuntimeLogger, createSession } from '../runtime/session';
import type { DrawRunner } from './sampler';

/** What a base session needs of a session: an in-process ModelSession or an inference worker's WorkerSession. */
export type BaseRunner = Pick<ModelSession, 'run' | 'release' | 'provider'>;

/** A base classifier h in one ORT session: noisy images in, class indices out. */
export interface BaseSession {
  session: BaseRunner;
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
  return baseSessionOn(session, shape);
}

/**
 * A base session over a session opened elsewhere: in the service, h lives in
 * the set's inference worker threads (ServedModel.loadGraph), so no draw runs
 * on the event loop. The noisy buffer is transferred to the worker, not copied.
 */
export function baseSessionOn(session: BaseRunner, shape: [number, number, number]): BaseSession {
  const run: DrawRunner = async (noisy, count) => {
    const out = await session.run({ input: new ort.Tensor('float32', noisy, [count, ...shape]) }, ['prediction']);
    return out.prediction.data as BigInt64Array;
  };
  return { session, shape, run };
}
