import * as ort from 'onnxruntime-node';
import { UserError } from '../util/errors';
import { ORT_TYPE } from '../onnx/dtype';
import { Graph } from '../onnx/graph';
import { encodeModel } from '../onnx/io';
import { TensorData } from '../onnx/tensor';
import { Provider, ProviderChoice, cudaProviderInstalled, cudaUnavailableReason, missingForCuda, requireCuda, silenceNativeLog } from './providers';

silenceNativeLog();

/** Minimal logger shape (pino's) so the runtime does not depend on the server. */
export interface RuntimeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface SessionOptions {
  provider?: ProviderChoice;
  /** threads inside one op; 0 = ORT default (all cores) */
  intraOpThreads?: number;
  interOpThreads?: number;
  /** name used in errors and logs */
  label?: string;
  logger?: RuntimeLogger;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA device ordinal */
  deviceId?: number;
  /**
   * Whether ORT's intra-op threads spin while waiting for work (default true).
   * Spinning lowers single-run latency but burns the cores that a server's
   * event loop and image decoding need between batches.
   */
  allowSpinning?: boolean;
}

export type Feed = ort.Tensor | TensorData;

const silent: RuntimeLogger = { info: () => undefined, warn: () => undefined };

export function toOrtTensor(t: TensorData): ort.Tensor {
  const type = ORT_TYPE[t.dataType];
  if (!type) throw new UserError(`tensor type ${t.dataType} has no onnxruntime equivalent`);
  return new ort.Tensor(type as 'float32', t.data as Float32Array, t.dims);
}

function formatShape(s: readonly (number | string)[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * One loaded graph on one execution provider. Checks every feed against the
 * graph's declared inputs before handing it to native code, so a wrong shape
 * is one readable error rather than an ORT stack trace.
 */
export class ModelSession {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly provider: Provider,
    readonly label: string,
  ) {}

  static async create(source: Graph | Uint8Array | string, opts: SessionOptions = {}): Promise<ModelSession> {
    const label = opts.label ?? (typeof source === 'string' ? source : source instanceof Uint8Array ? 'model' : source.name);
    const log = opts.logger ?? silent;
    const bytes = typeof source === 'string' ? source : source instanceof Uint8Array ? source : encodeModel(source);
    const choice = opts.provider ?? 'auto';
    const base: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.intraOpThreads ?? 0,
      interOpNumThreads: opts.interOpThreads ?? 0,
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    };
    if (opts.allowSpinning === false) {
      base.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
    }
    const open = async (provider: Provider) => {
      const executionProviders: ort.InferenceSession.ExecutionProviderConfig[] =
        provider === 'cuda' ? [{ name: 'cuda', deviceId: opts.deviceId ?? 0 } as ort.InferenceSession.ExecutionProviderConfig, 'cpu'] : ['cpu'];
      // ORT's native log is off (silenceNativeLog); its failures reach us as exceptions, logged as JSON.
      const o = { ...base, executionProviders, logSeverityLevel: 4 } as ort.InferenceSession.SessionOptions;
      return typeof bytes === 'string' ? ort.InferenceSession.create(bytes, o) : ort.InferenceSession.create(bytes, o);
    };
    if (typeof bytes === 'string') {
      const { existsSync } = await import('node:fs');
      if (!existsSync(bytes)) throw new UserError(`model file not found: ${bytes}`);
    }
    if (choice === 'cuda') {
      // CUDA or nothing: a pod that asked for a GPU must not quietly serve from the CPU.
      requireCuda(opts.deviceId ?? 0);
      try {
        const s = await open('cuda');
        log.info({ graph: label, provider: 'cuda' }, 'session on CUDA');
        return new ModelSession(s, 'cuda', label);
      } catch (e) {
        throw new UserError(`provider cuda was requested but the CUDA execution provider failed to start for graph '${label}': ${(e as Error).message.split('\n')[0]}`);
      }
    }
    if (choice === 'auto') {
      const missing = missingForCuda(opts.deviceId ?? 0);
      let reason = missing.length ? cudaUnavailableReason(missing) : undefined;
      if (!reason) {
        try {
          const s = await open('cuda');
          log.info({ graph: label, provider: 'cuda' }, 'session on CUDA');
          return new ModelSession(s, 'cuda', label);
        } catch (e) {
          reason = `CUDA execution provider failed to start: ${(e as Error).message.split('\n')[0]}`;
        }
      }
      // `auto` falls back, and says so (the provider label on s2s_model_info shows it too). On a CPU-only
      // install that is expected (info); with the CUDA provider installed it means a broken GPU node (warn).
      (cudaProviderInstalled() ? log.warn : log.info).call(log, { graph: label, provider: 'cpu', reason }, 'provider auto: using the CPU');
    }
    try {
      const s = await open('cpu');
      log.info({ graph: label, provider: 'cpu' }, 'session on CPU');
      return new ModelSession(s, 'cpu', label);
    } catch (e) {
      throw new UserError(`cannot load graph '${label}': ${(e as Error).message.split('\n')[0]}`);
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Declared shape of an input (symbolic dims as strings). */
  inputShape(name: string): readonly (number | string)[] | undefined {
    const m = this.session.inputMetadata.find((x) => x.name === name);
    return m && m.isTensor ? m.shape : undefined;
  }

  /** Throws a UserError naming the graph, the input and both shapes when a feed does not fit. */
  checkFeeds(feeds: Record<string, ort.Tensor>): void {
    for (const name of Object.keys(feeds)) {
      if (!this.session.inputNames.includes(name)) {
        throw new UserError(`graph '${this.label}' has no input '${name}' (inputs: ${this.session.inputNames.join(', ')})`);
      }
    }
    for (const m of this.session.inputMetadata) {
      const t = feeds[m.name];
      if (!t) throw new UserError(`graph '${this.label}': input '${m.name}' is missing`);
      if (!m.isTensor) continue;
      const expected = m.shape;
      const got = t.dims;
      const rankOk = expected.length === 0 || expected.length === got.length;
      const dimsOk = rankOk && expected.every((d, i) => typeof d !== 'number' || d < 0 || d === got[i]);
      if (m.type !== t.type || !dimsOk) {
        throw new UserError(
          `graph '${this.label}': input '${m.name}' expects ${m.type} ${formatShape(expected)}, got ${t.type} ${formatShape(got)}`,
        );
      }
    }
  }

  async run(feeds: Record<string, Feed>, outputs?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    const tensors: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) tensors[k] = "dataType" in v ? toOrtTensor(v) : v;
    this.checkFeeds(tensors);
    const r = outputs ? await this.session.run(tensors, outputs as string[]) : await this.session.run(tensors);
    return r as Record<string, ort.Tensor>;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export function createSession(source: Graph | Uint8Array | string, opts: SessionOptions = {}): Promise<ModelSession> {
  return ModelSession.create(source, opts);
}
