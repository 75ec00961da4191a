import { BpdaOracle } from '../../attacks/bpda';
import { GradientOracle, OnnxGradientOracle } from '../../attacks/oracle';
import { DataType } from '../../onnx/dtype';
import { Graph, cloneGraph } from '../../onnx/graph';
import { TensorData } from '../../onnx/tensor';
import { ModelSession, createSession } from '../../runtime/session';
import { initializersToInputs } from '../../training/graphEdit';
import { composeDefended, imageGeometry, reconstructionOutput } from '../compose';
import { DefendedGradient } from './recipe';

/**
 * Where stage 2's adversarial examples get their gradients: `oracle(batch)`
 * is called once per batch and answers for the model as it is at that moment.
 */
export interface AdversarialSource {
  readonly against: string;
  oracle(batch: number): Promise<GradientOracle>;
  release(): Promise<void>;
}

/** The frozen classifier f: one session, the same model for every batch. */
export function frozenClassifierSource(f: Graph, intraOpThreads = 1): AdversarialSource {
  const oracle = OnnxGradientOracle.fromForward('f (adversarial inputs)', f, { intraOpThreads });
  return { against: 'f', oracle: async () => oracle, release: () => oracle.release() };
}

/**
 * How examples of the current f ∘ s take their gradient: 'through-s', the
 * true gradient of f ∘ s; 'bpda', f's gradient at s(x) passed straight
 * through s (what the evaluation's white-box′ attacker does, and what a
 * decoder trained only against the true gradient learns to mask);
 * 'alternate', one then the other on successive batches; 'rotate-with-f',
 * those two and then f's own gradient (examples of the frozen classifier
 * alone, the guided denoiser's inputs, which the gray-box attacker makes) in
 * rotation, a third of the batches each.
 */
/** Which gradient a batch's examples take under a DefendedGradient. */
export function batchGradient(gradient: DefendedGradient, batch: number): 'through-s' | 'bpda' | 'f' {
  if (gradient === 'alternate') return batch % 2 === 1 ? 'bpda' : 'through-s';
  if (gradient === 'rotate-with-f') return (['through-s', 'bpda', 'f'] as const)[batch % 3];
  return gradient;
}

/**
 * The current f ∘ s while its decoder trains. `values()` returns the
 * trainer's current trainable tensors and running statistics (copies); the
 * autoencoder's initializers of those names become graph inputs, built once
 * on the first batch, and every batch binds a fresh snapshot. The decoder's
 * BatchNorm is in inference form with its current running statistics — the
 * model as it would be served if training stopped here. Batches are read
 * one step ahead of training (the trainer prefetches), so the examples are
 * made against the decoder of one step earlier.
 */
export function currentDefendedSource(ae: Graph, f: Graph, values: () => ReadonlyMap<string, TensorData>, intraOpThreads = 1, gradient: DefendedGradient = 'through-s'): AdversarialSource {
  let through: OnnxGradientOracle | undefined;
  let fOracle: OnnxGradientOracle | undefined;
  let s: Promise<ModelSession> | undefined;
  let bound: Record<string, TensorData> = {};
  const liveAe = (names: string[]) => {
    const g = cloneGraph(ae);
    initializersToInputs(g, names);
    return g;
  };
  const recon = reconstructionOutput(ae);
  const dims = imageGeometry(ae, 'autoencoder');
  const per = dims.reduce((a, b) => a * b, 1);
  return {
    against: gradient === 'through-s' ? 'defended' : `defended (${gradient})`,
    async oracle(batch: number) {
      const now = values();
      const which = batchGradient(gradient, batch);
      if (which === 'through-s') {
        through ??= OnnxGradientOracle.fromForward('f ∘ s in training (adversarial inputs)', composeDefended(liveAe([...now.keys()]), f, 'defended_in_training'), { intraOpThreads });
        through.bind(now);
        return through;
      }
      fOracle ??= OnnxGradientOracle.fromForward('f (adversarial inputs, BPDA)', f, { intraOpThreads });
      if (which === 'f') return fOracle;
      s ??= createSession(liveAe([...now.keys()]), { intraOpThreads, label: 's in training (BPDA)' });
      bound = Object.fromEntries(now);
      const session = await s;
      const purify = async (x: Float32Array) => {
        const r = await session.run({ ...bound, input: { dataType: DataType.FLOAT, dims: [x.length / per, ...dims], data: x } }, [recon]);
        return r[recon].data as Float32Array;
      };
      return new BpdaOracle(fOracle, purify, 's in training');
    },
    release: async () => {
      await through?.release();
      await fOracle?.release();
      if (s) await (await s).release();
    },
  };
}
