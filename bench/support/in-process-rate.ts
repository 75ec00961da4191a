/**
 * The in-process side of bench/throughput.ts, in a process of its own so
 * that it can be pinned to the same cores as the service under test. It
 * builds the serving graph of one model set with the service's thread
 * settings (no spinning), then, per request from its parent over IPC, runs
 * it back to back at one batch size for a while and answers with what it
 * did: images, wall seconds and its own CPU seconds.
 *
 * Started by bench/throughput.ts; nothing to run by hand.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { loadModelSet } from '../../src/models/loader';
import { createSession } from '../../src/runtime/session';
import { loadServingGraph } from '../../src/serving/served-model';
import { geometryOf } from '../../src/serving/image';

export interface RateRequest {
  batch: number;
  seconds: number;
}
export interface RateAnswer {
  images: number;
  seconds: number;
  cpuSeconds: number;
}

async function main() {
  const [modelsDir, model, threads] = process.argv.slice(2);
  const set = await loadModelSet(join(modelsDir, model));
  const geo = geometryOf(set.manifest.input);
  const session = await createSession(loadServingGraph(set), { provider: 'cpu', intraOpThreads: Number(threads), allowSpinning: false });
  const size = geo.channels * geo.height * geo.width;
  const hasNoise = session.inputNames.includes('noise');
  const feeds = (n: number) => {
    const input = new Float32Array(n * size);
    // the same deterministic pattern the load generator sends
    for (let i = 0; i < input.length; i++) input[i] = (((i % size) * 37 + ((i % size) >> 5) * 11) & 255) / 255;
    const dims = [n, geo.channels, geo.height, geo.width];
    return { input: new ort.Tensor('float32', input, dims), ...(hasNoise ? { noise: new ort.Tensor('float32', new Float32Array(n * size), dims) } : {}) };
  };
  process.on('message', async (m: RateRequest) => {
    const fb = feeds(m.batch);
    await session.run(fb, ['probs', 'score']); // this batch size's first run plans its memory
    let runs = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < m.seconds * 1000) {
      await session.run(fb, ['probs', 'score']);
      runs++;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    process.send!({ images: runs * m.batch, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies RateAnswer);
  });
  process.send!({ ready: true });
}

main().catch((e: Error) => {
  console.error(`in-process-rate: ${e.message}`);
  process.exit(1);
});
