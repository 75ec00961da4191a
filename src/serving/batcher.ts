import { performance } from 'node:perf_hooks';
import { UserError } from '../util/errors';

/**
 * Dynamic batching in front of one session. Requests reserve room first
 * (before decoding, so a full queue costs the client nothing and answers
 * 503 at once), then submit their decoded images. At most `concurrency`
 * batches run at a time (one per inference worker): each session already
 * uses its share of the cores, and images that arrive meanwhile make the next
 * batch larger.
 *
 * When to run: as soon as a worker is free and either a full batch is
 * waiting, the oldest image has waited maxDelayMs, or no reserved request is
 * still decoding (nothing more is coming, so waiting would only add latency).
 * That last rule is what keeps a lone request at single-run latency.
 */

export interface BatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  /** images queued or reserved at most; beyond it reserve() answers 503 */
  queueLimit: number;
  /** batches in flight at once (one per inference worker); default 1 */
  concurrency?: number;
  /**
   * Longest an admitted image is expected to wait (images ahead of it ÷ the
   * measured drain rate); beyond it reserve() answers 503 even when the queue
   * has room, except while no more than one batch per worker is waiting.
   * 0 or absent: only queueLimit bounds admission.
   */
  maxQueueWaitMs?: number;
}

export interface BatcherObserver {
  depth?(images: number): void;
  batch?(size: number, inferenceSeconds: number): void;
  queueWait?(seconds: number): void;
  rejected?(reason: 'queue_full' | 'deadline'): void;
}

export interface Timed<O> {
  output: O;
  queueMs: number;
  inferenceMs: number;
  batchSize: number;
}

/** 503 with a Retry-After the error handler puts on the response. */
export class OverloadError extends UserError {
  constructor(message: string, readonly reason: 'queue_full' | 'deadline' | 'overloaded', readonly retryAfterSeconds: number) {
    super(message, 503);
    this.name = 'OverloadError';
  }
}

interface Item<I, O> {
  input: I;
  ticket: Ticket<I, O>;
  submittedAt: number;
  resolve(r: Timed<O>): void;
  reject(e: unknown): void;
}

/** Weight of the newest batch in the drain-rate average: about the last ten batches count. */
const DRAIN_EWMA_WEIGHT = 0.1;

export class Batcher<I, O> {
  private queue: Item<I, O>[] = [];
  private reserved = 0;
  private running = 0;
  /** EWMA of milliseconds per image over completed batches (dispatch to answer); undefined until one completes */
  private msPerImage: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly run: (inputs: I[]) => Promise<O[]>,
    readonly options: BatcherOptions,
    private readonly observer: BatcherObserver = {},
  ) {
    if (!(options.maxBatch >= 1)) throw new Error(`maxBatch must be ≥ 1, got ${options.maxBatch}`);
    if (options.concurrency !== undefined && !(options.concurrency >= 1)) throw new Error(`concurrency must be ≥ 1, got ${options.concurrency}`);
  }

  /** Images queued or reserved. */
  depth(): number {
    return this.queue.length + this.reserved;
  }

  /**
   * Expected wait of `count` more images: the images ahead of them and their
   * own, at the measured drain rate (all workers together). Measured per
   * batch from dispatch to answer, so a main thread slowed by a flood slows
   * the rate too. 0 until a batch has completed.
   */
  expectedWaitMs(count = 1): number {
    if (this.msPerImage === undefined) return 0;
    return ((this.depth() + count) * this.msPerImage) / (this.options.concurrency ?? 1);
  }

  /** Why `count` more images would be refused now, or undefined when they fit. */
  refusal(count = 1): string | undefined {
    if (this.depth() + count > this.options.queueLimit) return `queue full (${this.depth()} of ${this.options.queueLimit} images waiting); retry shortly`;
    const budget = this.options.maxQueueWaitMs ?? 0;
    // one full batch per worker is always admitted: a heavy model whose single batch outlasts the
    // budget still gets full batches (and its throughput) rather than ever smaller ones
    if (budget > 0 && this.depth() + count > this.options.maxBatch * (this.options.concurrency ?? 1)) {
      const wait = this.expectedWaitMs(count);
      if (wait > budget) return `queue too slow (${this.depth()} images waiting, expected wait ${Math.round(wait)} ms over the ${budget} ms budget); retry shortly`;
    }
    return undefined;
  }

  /** Whether `count` more images fit now: the check at the door, before a body is read. */
  hasRoom(count = 1): boolean {
    return this.refusal(count) === undefined;
  }

  /** Room for `count` images, or an OverloadError (503) when the queue is full or its expected wait over budget. */
  reserve(count: number): Ticket<I, O> {
    const refused = this.refusal(count);
    if (refused !== undefined) {
      this.observer.rejected?.('queue_full');
      throw new OverloadError(refused, 'queue_full', 1);
    }
    this.reserved += count;
    this.observer.depth?.(this.depth());
    return new Ticket(this, count);
  }

  /** Resolves once nothing is queued, reserved or running (used while draining). */
  idle(): Promise<void> {
    if (this.depth() === 0 && this.running === 0) return Promise.resolve();
    return new Promise((ok) => this.idleWaiters.push(ok));
  }

  /** @internal Ticket → batcher */
  release(count: number): void {
    this.reserved -= count;
    this.observer.depth?.(this.depth());
    this.schedule();
  }

  /** @internal */
  enqueue(ticket: Ticket<I, O>, inputs: I[]): Promise<Timed<O>>[] {
    this.reserved -= ticket.count;
    const now = performance.now();
    const promises = inputs.map(
      (input) => new Promise<Timed<O>>((resolve, reject) => this.queue.push({ input, ticket, submittedAt: now, resolve, reject })),
    );
    this.observer.depth?.(this.depth());
    this.schedule();
    return promises;
  }

  /** @internal drops a ticket's still-queued images with a deadline error */
  expire(ticket: Ticket<I, O>, error: OverloadError): void {
    const mine = this.queue.filter((it) => it.ticket === ticket);
    if (mine.length === 0) return;
    this.queue = this.queue.filter((it) => it.ticket !== ticket);
    this.observer.rejected?.('deadline');
    for (const it of mine) it.reject(error);
    this.observer.depth?.(this.depth());
    this.checkIdle();
  }

  private schedule(): void {
    if (this.running >= (this.options.concurrency ?? 1) || this.queue.length === 0) {
      this.checkIdle();
      return;
    }
    const waited = performance.now() - this.queue[0].submittedAt;
    if (this.queue.length >= this.options.maxBatch || this.reserved === 0 || waited >= this.options.maxDelayMs) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      void this.dispatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, Math.max(0, this.options.maxDelayMs - waited));
    }
  }

  private async dispatch(): Promise<void> {
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.running++;
    this.observer.depth?.(this.depth());
    const start = performance.now();
    for (const it of batch) this.observer.queueWait?.((start - it.submittedAt) / 1000);
    try {
      const outputs = await this.run(batch.map((it) => it.input));
      const inferenceMs = performance.now() - start;
      const perImage = inferenceMs / batch.length;
      this.msPerImage = this.msPerImage === undefined ? perImage : this.msPerImage + DRAIN_EWMA_WEIGHT * (perImage - this.msPerImage);
      this.observer.batch?.(batch.length, inferenceMs / 1000);
      batch.forEach((it, i) => it.resolve({ output: outputs[i], queueMs: start - it.submittedAt, inferenceMs, batchSize: batch.length }));
    } catch (e) {
      for (const it of batch) it.reject(e);
    } finally {
      this.running--;
      this.schedule();
    }
  }

  private checkIdle(): void {
    if (this.running > 0 || this.depth() > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * Room reserved for one request's images. Exactly one of submit() or
 * cancel() must follow (the routes cancel when decoding fails).
 */
export class Ticket<I, O> {
  private settled = false;

  constructor(
    private readonly batcher: Batcher<I, O>,
    readonly count: number,
  ) {}

  /**
   * Queues the images and resolves with their outputs in order. Images still
   * queued at `deadline` (performance.now() ms) fail with a 503.
   */
  async submit(inputs: I[], deadline: number): Promise<Timed<O>[]> {
    if (this.settled) throw new Error('ticket already used');
    if (inputs.length !== this.count) throw new Error(`ticket reserved ${this.count} images, got ${inputs.length}`);
    this.settled = true;
    const promises = this.batcher.enqueue(this, inputs);
    const timer = setTimeout(
      () => this.batcher.expire(this, new OverloadError('request deadline passed while waiting for the model; retry shortly', 'deadline', 1)),
      Math.max(0, deadline - performance.now()),
    );
    try {
      return await Promise.all(promises);
    } finally {
      clearTimeout(timer);
    }
  }

  cancel(): void {
    if (this.settled) return;
    this.settled = true;
    this.batcher.release(this.count);
  }
}
