import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/onnx/builder';
import { trainingSessionOptions, TrainingSession } from '../../src/training/session';

describe('TrainingSession', () => {
  const graph = () => {
    const b = new GraphBuilder('tiny', { seed: 1 });
    const x = b.input('input', ['N', 3]);
    b.output(b.relu(b.linear(x, { out: 2, name: 'fc' })), 'y');
    return b.build();
  };

  test('runs the graph on the CPU with the training options (no memory pattern, arena on)', async () => {
    const s = await TrainingSession.create(graph(), { provider: 'cpu', intraOpThreads: 1 });
    expect(s.provider).toBe('cpu');
    const out = await s.session.run({ input: new ort.Tensor('float32', Float32Array.of(1, 2, 3, -1, -2, -3), [2, 3]) });
    expect(out.y.dims).toEqual([2, 2]);
    await s.release();
    expect(trainingSessionOptions('cpu', 1)).toMatchObject({ enableMemPattern: false, enableCpuMemArena: true, intraOpNumThreads: 1, executionProviders: ['cpu'] });
  });

  test('a feed of the wrong shape, a missing or an unknown input is one readable error', async () => {
    const s = await TrainingSession.create(graph(), { provider: 'cpu', intraOpThreads: 1 });
    expect(() => s.checkFeeds({ input: new ort.Tensor('float32', new Float32Array(8), [2, 4]) })).toThrow("graph 'tiny': input 'input' expects float32 [N, 3], got float32 [2, 4]");
    expect(() => s.checkFeeds({})).toThrow("graph 'tiny': input 'input' is missing");
    expect(() => s.checkFeeds({ input: new ort.Tensor('float32', new Float32Array(3), [1, 3]), labels: new ort.Tensor('int64', new BigInt64Array(1), [1]) })).toThrow("graph 'tiny' has no input 'labels' (inputs: input)");
    await s.release();
  });
});
