import { GraphBuilder } from '../../src/onnx/builder';
import { floatTensor } from '../../src/onnx/tensor';
import { cgroupQuota } from '../../src/runtime/cpu-budget';
import { createSession } from '../../src/runtime/session';
import { InferencePool } from '../../src/runtime/worker/inference-pool';
import { UserError } from '../../src/util/errors';

function tiny() {
  const b = new GraphBuilder('tiny', { seed: 1 });
  const x = b.input('input', ['N', 1, 4, 4]);
  b.output(b.linear(b.flatten(x), { out: 3 }), 'logits');
  return b.build();
}

describe('InferencePool (sessions in worker threads)', () => {
  const pool = new InferencePool({ workers: 2 });
  afterAll(() => pool.close());

  it('gives what the same graph gives in this thread, and takes the feed by transfer', async () => {
    const s = await pool.load('tiny', tiny(), { provider: 'cpu', intraOpThreads: 1, label: 'tiny' });
    expect([s.provider, s.inputNames, s.outputNames, s.inputShape('input')]).toEqual(['cpu', ['input'], ['logits'], ['N', 1, 4, 4]]);
    const values = Array.from({ length: 32 }, (_, i) => (i % 7) / 7);
    const local = await (await createSession(tiny(), { provider: 'cpu' })).run({ input: floatTensor([2, 1, 4, 4], values) });
    const feed = floatTensor([2, 1, 4, 4], values);
    const remote = await s.run({ input: feed });
    expect(remote.logits.dims).toEqual([2, 3]);
    expect(Array.from(remote.logits.data as Float32Array)).toEqual(Array.from(local.logits.data as Float32Array));
    expect(feed.data.byteLength).toBe(0); // moved to the worker, not copied
  });

  it('reports a wrong feed as the same UserError a session in this thread gives', async () => {
    const err = await pool.run('tiny', { input: floatTensor([2, 3, 4, 4]) }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe("graph 'tiny': input 'input' expects float32 [N, 1, 4, 4], got float32 [2, 3, 4, 4]");
    await expect(pool.run('nothing', { input: floatTensor([1, 1, 4, 4]) })).rejects.toThrow("no graph 'nothing' is loaded in this worker");
  });

  it('starts a worker again when one dies, with its graphs, and keeps serving', async () => {
    const handles = (pool as unknown as { handles: Array<{ worker: { terminate(): Promise<number> }; ready: Promise<void> }> }).handles;
    const dead = handles[0].worker;
    await dead.terminate();
    while (handles[0].worker === dead) await new Promise((r) => setTimeout(r, 5));
    await handles[0].ready;
    const outs = await Promise.all(Array.from({ length: 4 }, () => pool.run('tiny', { input: floatTensor([1, 1, 4, 4]) })));
    expect(outs.every((o) => o.logits.dims.join() === '1,3')).toBe(true);
  });
});

describe('cgroupQuota', () => {
  const files = (m: Record<string, string>) => (p: string) => m[p];
  it('reads cgroup v2 cpu.max and v1 cfs quota/period; none means no limit', () => {
    expect(cgroupQuota(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(1.5);
    expect(cgroupQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBeUndefined();
    expect(cgroupQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '200000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBe(2);
    expect(cgroupQuota(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBeUndefined();
    expect(cgroupQuota(files({}))).toBeUndefined();
  });
});
