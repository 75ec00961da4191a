import { access } from 'node:fs';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { ORT_TYPE } from '../../onnx/dtype';
import type { Graph } from '../../onnx/graph';
import { encodeModel } from '../../onnx/io';
import { UserError } from '../../util/errors';
import type { Provider } from '../providers';
import type { Feed, RuntimeLogger } from '../session';
import { workerEntry } from './entry';
import { ARRAYS, GraphInfo, Reply, Request, WireTensor, WorkerSessionOptions, WorkerStart, ownBuffer } from './protocol';

/**
 * ONNX Runtime sessions in worker threads. Each worker holds every loaded
 * graph (by name) in its own session; a run goes to the worker with the
 * fewest runs in flight. The main thread never calls `session.run`, so it
 * keeps accepting connections, parsing, decoding and answering while a batch
 * runs. Feeds and outputs cross by transfer, not copy.
 *
 * A worker that dies (a native crash, out of memory) fails the runs it held
 * with a 500, is started again and reloads its graphs; the others keep serving.
 */

const silent: RuntimeLogger = { info: () => undefined, warn: () => undefined };


function toWire(name: string, f: Feed): WireTensor {
  if ('dataType' in f) {
    const type = ORT_TYPE[f.dataType];
    if (!type) throw new UserError(`input '${name}': tensor type ${f.dataType} has no onnxruntime equivalent`);
    return { type, dims: [...f.dims], buffer: ownBuffer(f.data as ArrayBufferView) };
  }
  return { type: f.type, dims: [...f.dims], buffer: ownBuffer(f.data as ArrayBufferView) };
}

function fromWire(t: WireTensor): ort.Tensor {
  const make = ARRAYS[t.type];
  if (!make) throw new Error(`tensor type ${t.type} came back from the inference worker`);
  return new ort.Tensor(t.type as 'float32', new make(t.buffer) as Float32Array, t.dims);
}

interface Pending {
  resolve(r: Reply): void;
  reject(e: Error): void;
}

/** One worker thread and the requests it has not answered yet. */
class WorkerHandle {
  worker!: Worker;
  readonly pending = new Map<number, Pending>();
  /** runs in flight: the pool sends the next run to the least busy worker */
  busy = 0;
  /** resolves once the worker holds every graph the pool has loaded */
  ready: Promise<void> = Promise.resolve();

  constructor(
    readonly index: number,
    private readonly pool: InferencePool,
  ) {
    this.spawn();
  }

  spawn(): void {
    const entry = workerEntry(__dirname, 'inference-worker');
    // stdout/stderr of the worker stay the process's own (ORT writes native log lines there).
    const workerData: WorkerStart = { nice: this.pool.nice };
    this.worker = new Worker(entry.file, { execArgv: entry.execArgv, name: `inference-${this.index}`, workerData });
    this.worker.on('message', (m: Reply) => this.onMessage(m));
    this.worker.on('error', (e) => this.pool.logger.warn({ worker: this.index, err: e.message }, 'inference worker error'));
    this.worker.on('exit', (code) => this.onExit(code));
  }

  private onMessage(m: Reply): void {
    if (m.kind === 'log') {
      this.pool.logger[m.level]({ worker: this.index, ...m.obj }, m.msg);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.kind === 'failed') p.reject(m.error.userStatus !== undefined ? new UserError(m.error.message, m.error.userStatus) : new Error(m.error.message));
    else p.resolve(m);
  }

  private onExit(code: number): void {
    const lost = [...this.pending.values()];
    this.pending.clear();
    this.busy = 0;
    for (const p of lost) p.reject(new Error(`inference worker ${this.index} exited (code ${code}) during a run`));
    if (this.pool.closing) return;
    this.pool.logger.warn({ worker: this.index, code, lost: lost.length }, 'inference worker exited; starting a new one');
    this.spawn();
    this.ready = this.pool.reloadInto(this);
    this.ready.catch((e) => this.pool.logger.warn({ worker: this.index, err: (e as Error).message }, 'restarted inference worker could not reload its graphs'));
  }

  call(req: Request, transfer: ArrayBuffer[] = []): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      this.worker.postMessage(req, transfer);
    });
  }
}

export interface InferencePoolOptions {
  /** worker threads, each with its own session per graph */
  workers: number;
  logger?: RuntimeLogger;
  /**
   * How many nice steps (0–19) below the process the worker threads and
   * ONNX Runtime's threads inside them run (Linux; thread-priority.ts): above
   * 0, the event loop wins the CPU whenever it needs it. 0 or absent: the
   * process's own priority.
   */
  nice?: number;
}

export class InferencePool {
  readonly logger: RuntimeLogger;
  readonly nice: number;
  closing = false;
  private readonly handles: WorkerHandle[];
  private readonly graphs = new Map<string, { model: Uint8Array; options: WorkerSessionOptions }>();
  private nextId = 1;

  constructor(opts: InferencePoolOptions) {
    if (!(opts.workers >= 1)) throw new Error(`an inference pool needs at least one worker, got ${opts.workers}`);
    this.logger = opts.logger ?? silent;
    this.nice = opts.nice ?? 0;
    if (!(Number.isInteger(this.nice) && this.nice >= 0 && this.nice <= 19)) throw new Error(`inference threads' nice steps must be a whole number from 0 to 19, got ${opts.nice}`);
    if (this.nice > 0) {
      // libuv's thread pool (decoding, file reads) starts on its first job and its threads inherit the
      // priority of the thread that queued it: queue one here, on this thread, before a lowered worker can.
      access(__filename, () => undefined);
    }
    this.handles = Array.from({ length: opts.workers }, (_, i) => new WorkerHandle(i, this));
  }

  get size(): number {
    return this.handles.length;
  }

  /** Opens `source` under `name` in every worker; resolves with a session-like handle for it. */
  async load(name: string, source: Graph | Uint8Array, options: WorkerSessionOptions): Promise<WorkerSession> {
    const model = source instanceof Uint8Array ? source : encodeModel(source);
    this.graphs.set(name, { model, options });
    const replies = await Promise.all(this.handles.map((h) => h.call({ kind: 'load', id: this.nextId++, name, model, options })));
    const info = (replies[0] as Extract<Reply, { kind: 'loaded' }>).info;
    return new WorkerSession(this, name, options.label ?? name, info);
  }

  /** The options a graph was loaded with. */
  optionsOf(name: string): WorkerSessionOptions {
    const g = this.graphs.get(name);
    if (!g) throw new Error(`no graph '${name}' is loaded`);
    return g.options;
  }

  /** @internal reloads every graph into a restarted worker */
  async reloadInto(h: WorkerHandle): Promise<void> {
    for (const [name, g] of this.graphs) await h.call({ kind: 'load', id: this.nextId++, name, model: g.model, options: g.options });
  }

  /**
   * One run of graph `name` on the least busy worker. The feeds' buffers are
   * transferred (detached here) when a feed owns its whole buffer; pass
   * copies of anything you still need.
   */
  async run(name: string, feeds: Record<string, Feed>, outputs?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    if (this.closing) throw new Error('inference pool is closed');
    const wire: Record<string, WireTensor> = {};
    for (const [k, f] of Object.entries(feeds)) wire[k] = toWire(k, f);
    const h = this.handles.reduce((a, b) => (b.busy < a.busy ? b : a));
    h.busy++;
    try {
      await h.ready;
      const r = await h.call({ kind: 'run', id: this.nextId++, name, feeds: wire, outputs: outputs ? [...outputs] : undefined }, Object.values(wire).map((w) => w.buffer));
      const out: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries((r as Extract<Reply, { kind: 'ran' }>).outputs)) out[k] = fromWire(t);
      return out;
    } finally {
      h.busy = Math.max(0, h.busy - 1);
    }
  }

  async release(name: string): Promise<void> {
    this.graphs.delete(name);
    await Promise.all(this.handles.map((h) => h.call({ kind: 'release', id: this.nextId++, name })));
  }

  /** Releases every session and ends the workers. */
  async close(): Promise<void> {
    if (this.closing) return;
    for (const name of [...this.graphs.keys()]) await this.release(name).catch(() => undefined);
    this.closing = true;
    await Promise.all(this.handles.map((h) => h.worker.terminate()));
  }
}

/**
 * One named graph in a pool, with ModelSession's shape (`run`, input and
 * output names, provider), so code written against a session can run on the
 * worker threads unchanged.
 */
export class WorkerSession {
  constructor(
    readonly pool: InferencePool,
    readonly name: string,
    readonly label: string,
    readonly info: GraphInfo,
  ) {}

  get provider(): Provider {
    return this.info.provider;
  }
  get inputNames(): readonly string[] {
    return this.info.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.info.outputNames;
  }
  /** Declared shape of an input (symbolic dims as strings). */
  inputShape(name: string): readonly (number | string)[] | undefined {
    return this.info.inputs.find((x) => x.name === name)?.shape;
  }

  run(feeds: Record<string, Feed>, outputs?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    return this.pool.run(this.name, feeds, outputs);
  }

  release(): Promise<void> {
    return this.pool.release(this.name);
  }
}
