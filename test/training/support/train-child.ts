/**
 * Child process for the kill-and-resume test: trains the artifacts in folder
 * argv[2] on the committed Fashion-MNIST subset for 30 steps, checkpointing
 * every 3 steps to `checkpoint.last` there and resuming from it if it exists
 * (the artifacts are written once by the parent, so every run trains exactly
 * the same graphs). Prints "step N" after every step; with argv[3] = K it
 * stops dead after step K (blocked, not exiting) so the parent can kill it at
 * a known point, deterministically.
 */
import { join } from 'node:path';
import { loadFashionMnist } from '../../../src/data/fashionMnist';
import { Trainer } from '../../../src/training/trainer';

async function main() {
  const artifacts = process.argv[2];
  const hangAt = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  const train = loadFashionMnist({ dir: join(__dirname, '..', '..', 'fixtures', 'fashion-mnist-small'), split: 'train' });
  const t = await Trainer.create({
    artifacts,
    train,
    batchSize: 64,
    steps: 30,
    schedule: { kind: 'cosine', lr: 3e-3, totalSteps: 30, warmupSteps: 4 },
    seed: 5,
    checkpointEvery: 3,
    resume: true,
    progress: false,
    intraOpThreads: 2,
    onStep: (s) => {
      process.stdout.write(`step ${s.step}\n`);
      if (s.step === hangAt) {
        // Block the whole process until the parent's SIGKILL arrives (stdout to a pipe is synchronous on Linux, so the line is out).
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
      }
    },
  });
  await t.run();
  await t.release();
  process.stdout.write('done\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
