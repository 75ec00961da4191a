import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/graph';
import { encodeModel } from '../onnx/io';
import { Provider, ProviderChoice, cudaProviderInstalled } from '../runtime/providers';
import { UserError } from '../util/errors';

/**
 * The session a training step runs in. Unlike inference sessions it turns
 * ONNX Runtime's memory pattern off: with it, ORT replays the first run's
 * allocations as one planned block from the second run on, and for training
 * graphs (hundreds of short-lived backward temporaries) that block was half
 * again the first run's peak — full SegNet at 112×112, batch 8: 1.96 GB peak
 * RSS with the pattern, 1.29 GB without, and no slower (bench/training-vs-torch.ts,
 * docs/training.md "Performance"). The arena stays on: without it the peak
 * was higher again (malloc fragmentation).
 */
export function trainingSessionOptions(provider: Provider, intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 0,
    graphOptimizationLevel: 'all',
    enableMemPattern: false,
    enableCpuMemArena: true,
    executionProviders: provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    logSeverityLevel: provider === 'cuda' ? 4 : 2,
  };
}

export class TrainingSession {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly provider: Provider,
    readonly label: string,
  ) {}

  /** 'auto' takes CUDA when onnxruntime-node's CUDA provider is installed and falls back to the CPU when it fails to start. */
  static async create(graph: Graph, opts: { provider?: ProviderChoice; intraOpThreads?: number; label?: string }): Promise<TrainingSession> {
    const label = opts.label ?? graph.name;
    const bytes = encodeModel(graph);
    const choice = opts.provider ?? 'auto';
    const threads = opts.intraOpThreads ?? 0;
    if (choice === 'cuda' || (choice === 'auto' && cudaProviderInstalled())) {
      try {
        return new TrainingSession(await ort.InferenceSession.create(bytes, trainingSessionOptions('cuda', threads)), 'cuda', label);
      } catch {
        // same policy as inference sessions: no GPU → CPU
      }
    }
    try {
      return new TrainingSession(await ort.InferenceSession.create(bytes, trainingSessionOptions('cpu', threads)), 'cpu', label);
    } catch (e) {
      throw new UserError(`cannot load graph '${label}': ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /** Throws a UserError naming the graph, the input and both shapes when a feed does not fit. */
  checkFeeds(feeds: Record<string, ort.Tensor>): void {
    const names = this.session.inputNames;
    for (const name of Object.keys(feeds)) {
      if (!names.includes(name)) throw new UserError(`graph '${this.label}' has no input '${name}' (inputs: ${names.join(', ')})`);
    }
    for (const m of this.session.inputMetadata) {
      const t = feeds[m.name];
      if (!t) throw new UserError(`graph '${this.label}': input '${m.name}' is missing`);
      if (!m.isTensor) continue;
      const rankOk = m.shape.length === 0 || m.shape.length === t.dims.length;
      const dimsOk = rankOk && m.shape.every((d, i) => typeof d !== 'number' || d < 0 || d === t.dims[i]);
      if (m.type !== t.type || !dimsOk) {
        throw new UserError(`graph '${this.label}': input '${m.name}' expects ${m.type} [${m.shape.join(', ')}], got ${t.type} [${t.dims.join(', ')}]`);
      }
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
