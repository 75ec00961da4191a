import { getPriority } from 'node:os';
import { GraphBuilder } from '../../src/onnx/builder';
import { floatTensor } from '../../src/onnx/tensor';
import { InferencePool } from '../../src/runtime/worker/inference-pool';
import { kernelThreadId, threadNiceValues } from '../../src/runtime/worker/thread-priority';

function tiny() {
  const b = new GraphBuilder('tiny', { seed: 1 });
  const x = b.input('input', ['N', 1, 4, 4]);
  b.output(b.linear(b.flatten(x), { out: 3 }), 'logits');
  return b.build();
}

const linux = kernelThreadId() !== undefined;

(linux ? describe : describe.skip)('inference threads below the event loop (Linux)', () => {
  it('lowers the worker and the ONNX Runtime threads it creates, and nothing that was running before', async () => {
    const base = getPriority(kernelThreadId()!);
    const steps = Math.min(5, 19 - base);
    const before = threadNiceValues();
    const pool = new InferencePool({ workers: 1, nice: steps });
    try {
      const s = await pool.load('tiny', tiny(), { provider: 'cpu', intraOpThreads: 3, label: 'tiny' });
      await s.run({ input: floatTensor([1, 1, 4, 4]) });
      const after = threadNiceValues();
      // every thread that existed before (this event loop, libuv's pool, V8's) keeps its priority
      for (const [tid, nice] of before) if (after.has(tid)) expect([tid, after.get(tid)]).toEqual([tid, nice]);
      expect(getPriority(kernelThreadId()!)).toBe(base);
      // the worker thread and ORT's two extra intra-op threads run `steps` lower
      const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === base + steps);
      expect(lowered.length).toBeGreaterThanOrEqual(3);
    } finally {
      await pool.close();
    }
  });

  it('refuses a nice value outside 0–19', () => {
    expect(() => new InferencePool({ workers: 1, nice: 20 })).toThrow('from 0 to 19');
    expect(() => new InferencePool({ workers: 1, nice: -1 })).toThrow('from 0 to 19');
  });
});
