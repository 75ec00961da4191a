import { performance } from 'node:perf_hooks';
import { Batcher, OverloadError } from '../../src/serving/batcher';

/** A run function the test releases by hand, recording each batch. */
function controlledRun() {
  const batches: number[][] = [];
  const pending: Array<() => void> = [];
  const run = (xs: number[]) => {
    batches.push(xs);
    return new Promise<number[]>((resolve) => pending.push(() => resolve(xs.map((x) => x * 10))));
  };
  const releaseNext = async () => {
    pending.shift()!();
    await flush();
  };
  return { run, batches, releaseNext, pending };
}

const flush = () => new Promise((r) => setImmediate(r));
const far = () => performance.now() + 60_000;

describe('Batcher', () => {
  it('runs a lone request at once, without waiting for maxDelay', async () => {
    const c = controlledRun();
    const b = new Batcher(c.run, { maxBatch: 8, maxDelayMs: 60_000, queueLimit: 100 });
    const p = b.reserve(1).submit([1], far());
    await flush();
    expect(c.batches).toEqual([[1]]);
    await c.releaseNext();
    expect((await p)[0]).toMatchObject({ output: 10, batchSize: 1 });
  });

  it('batches what arrives while a run is in flight, up to maxBatch', async () => {
    const c = controlledRun();
    const b = new Batcher(c.run, { maxBatch: 3, maxDelayMs: 0, queueLimit: 100 });
    const first = b.reserve(1).submit([0], far());
    await flush();
    const later = [1, 2, 3, 4].map((x) => b.reserve(1).submit([x], far()));
    await flush();
    expect(c.batches).toEqual([[0]]);
    await c.releaseNext();
    expect(c.batches).toEqual([[0], [1, 2, 3]]);
    await c.releaseNext();
    expect(c.batches).toEqual([[0], [1, 2, 3], [4]]);
    await c.releaseNext();
    const outs = await Promise.all([first, ...later]);
    expect(outs.map((o) => o[0].output)).toEqual([0, 10, 20, 30, 40]);
    expect(outs.map((o) => o[0].batchSize)).toEqual([1, 3, 3, 3, 1]);
  });

  it('waits for a request that reserved room and is still decoding', async () => {
    const c = controlledRun();
    const b = new Batcher(c.run, { maxBatch: 8, maxDelayMs: 60_000, queueLimit: 100 });
    const a = b.reserve(2);
    const slow = b.reserve(1);
    const pa = a.submit([1, 2], far());
    await flush();
    expect(c.batches).toEqual([]);
    const ps = slow.submit([3], far());
    await flush();
    expect(c.batches).toEqual([[1, 2, 3]]);
    await c.releaseNext();
    await Promise.all([pa, ps]);
  });

  it('stops waiting after maxDelayMs', async () => {
    const c = controlledRun();
    const b = new Batcher(c.run, { maxBatch: 8, maxDelayMs: 5, queueLimit: 100 });
    const never = b.reserve(1);
    const p = b.reserve(1).submit([7], far());
    while (c.batches.length === 0) await new Promise((r) => setTimeout(r, 1));
    expect(c.batches).toEqual([[7]]);
    await c.releaseNext();
    await p;
    never.cancel();
  });

  it('a full queue is an immediate 503 with a retry hint; cancelled reservations free room', async () => {
    const rejected: string[] = [];
    const b = new Batcher(async (xs: number[]) => xs, { maxBatch: 8, maxDelayMs: 0, queueLimit: 3 }, { rejected: (r) => rejected.push(r) });
    const t = b.reserve(3);
    let err: unknown;
    try {
      b.reserve(1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OverloadError);
    expect(err).toMatchObject({ statusCode: 503, reason: 'queue_full', retryAfterSeconds: 1 });
    expect(rejected).toEqual(['queue_full']);
    t.cancel();
    expect(b.depth()).toBe(0);
    expect(() => b.reserve(3).cancel()).not.toThrow();
  });

  it('with a wait budget, a request whose expected wait (queued images ÷ measured drain rate) is over it gets 503 while the queue has room', async () => {
    // each batch takes at least 40 ms by the batcher's own clock, so after one batch the measured
    // drain time is ≥ 40 ms per image: any image's expected wait is over a 20 ms budget
    const slow = async (xs: number[]) => {
      const until = performance.now() + 40;
      while (performance.now() < until) await new Promise((r) => setTimeout(r, 5));
      return xs;
    };
    const rejected: string[] = [];
    const b = new Batcher(slow, { maxBatch: 1, maxDelayMs: 0, queueLimit: 100, maxQueueWaitMs: 20 }, { rejected: (r) => rejected.push(r) });
    expect(b.hasRoom(1)).toBe(true); // nothing measured yet: only the queue limit applies
    await b.reserve(1).submit([1], far());
    expect(b.expectedWaitMs(1)).toBeGreaterThanOrEqual(40);
    // one full batch (per worker) is always admitted, whatever the budget
    expect(b.hasRoom(1)).toBe(true);
    const held = b.reserve(1);
    expect(b.hasRoom(1)).toBe(false);
    expect(b.refusal(1)).toMatch(/^queue too slow \(1 images waiting, expected wait \d+ ms over the 20 ms budget\); retry shortly$/);
    let err: unknown;
    try {
      b.reserve(1);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ statusCode: 503, reason: 'queue_full', retryAfterSeconds: 1 });
    expect(rejected).toEqual(['queue_full']);
    held.cancel();
    expect(b.hasRoom(1)).toBe(true);
    // the same service without a budget (0 = off) admits it: only the queue limit bounds admission
    const off = new Batcher(slow, { maxBatch: 1, maxDelayMs: 0, queueLimit: 100, maxQueueWaitMs: 0 });
    await off.reserve(1).submit([1], far());
    const offHeld = off.reserve(1);
    expect(off.expectedWaitMs(1)).toBeGreaterThanOrEqual(80);
    expect(off.hasRoom(1)).toBe(true);
    offHeld.cancel();
  });

  it('images still queued at their deadline fail with 503 and never run', async () => {
    const c = controlledRun();
    const b = new Batcher(c.run, { maxBatch: 1, maxDelayMs: 0, queueLimit: 100 });
    const busy = b.reserve(1).submit([1], far());
    await flush();
    const late = b.reserve(1).submit([2], performance.now() + 1);
    await expect(late).rejects.toMatchObject({ statusCode: 503, reason: 'deadline' });
    await c.releaseNext();
    await busy;
    expect(c.batches).toEqual([[1]]);
    expect(b.depth()).toBe(0);
  });

  it('a failing run fails every image of its batch and the batcher carries on', async () => {
    let fail = true;
    const b = new Batcher(
      async (xs: number[]) => {
        if (fail) throw new Error('boom');
        return xs;
      },
      { maxBatch: 4, maxDelayMs: 0, queueLimit: 100 },
    );
    await expect(b.reserve(2).submit([1, 2], far())).rejects.toThrow('boom');
    fail = false;
    expect((await b.reserve(1).submit([3], far()))[0].output).toBe(3);
  });

  it('idle() resolves once nothing is queued, reserved or running', async () => {
    const c = controlledRun();
    const b = new Batcher(c.run, { maxBatch: 4, maxDelayMs: 0, queueLimit: 100 });
    const p = b.reserve(1).submit([1], far());
    let idle = false;
    const i = b.idle().then(() => (idle = true));
    await flush();
    expect(idle).toBe(false);
    await c.releaseNext();
    await Promise.all([p, i]);
    expect(idle).toBe(true);
  });

  it('runs up to `concurrency` batches at once (one per inference worker), and hasRoom() is the door check', async () => {
    const c = controlledRun();
    const b = new Batcher(c.run, { maxBatch: 2, maxDelayMs: 0, queueLimit: 6, concurrency: 2 });
    const ps = [1, 2, 3, 4, 5, 6].map((x) => b.reserve(1).submit([x], far()));
    await flush();
    expect(c.batches).toEqual([[1], [2]]); // each went alone to a free worker; the rest wait for one
    expect(b.hasRoom(2)).toBe(true); // 4 queued of 6
    expect(b.hasRoom(3)).toBe(false);
    await c.releaseNext();
    expect(c.batches).toEqual([[1], [2], [3, 4]]);
    await c.releaseNext();
    expect(c.batches).toEqual([[1], [2], [3, 4], [5, 6]]);
    await c.releaseNext();
    await c.releaseNext();
    expect((await Promise.all(ps)).map((r) => r[0].output)).toEqual([10, 20, 30, 40, 50, 60]);
  });
});
