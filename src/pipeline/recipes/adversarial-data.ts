import { GradientOracle } from '../../attacks/oracle';
import { softmaxRows } from '../../attacks/objective';
import { streamRng } from '../../attacks/seeding';
import { Dataset } from '../../training/dataset';
import { AdversarialSource } from './adversarial-source';
import { AdversarialInputs } from './recipe';

/**
 * Training batches in which a fraction of the images are replaced by
 * adversarial examples made afresh for every batch, against the model the
 * source names: the frozen classifier f (a guided denoiser in the manner of
 * Liao et al. 2018's HGD: the decoder learns to undo what moves f), or the
 * current f ∘ s (adversarial training of the decoder, Madry et al. 2018,
 * with the rest of the network frozen). Per image ε ~ U(epsMin, epsMax), so
 * the decoder sees small and large perturbations; FGSM is one gradient per
 * image, PGD `iterations` of them from a random start with step
 * 2.5·ε/iterations. The steps ascend the cross-entropy of the label, or
 * (`ascent: 'kl'`, TRADES' inner maximisation) KL(p ‖ p′) from the model's
 * prediction p on the clean image to p′ on the example — label-free, it
 * moves the prediction wherever it moves most rather than only away from the
 * label. The chosen images are the first ones of each (already
 * shuffled) batch. Draws are seeded by (seed, batch number, row): a fresh run
 * repeats exactly.
 */
export function adversarialDataset(base: Dataset, source: AdversarialSource, o: AdversarialInputs, seed: number): Dataset & { release(): Promise<void> } {
  const per = base.shape.reduce((a, b) => a * b, 1);
  let batchNo = 0;
  return {
    size: base.size,
    shape: [...base.shape],
    async get(indices: number[]) {
      const b = await base.get(indices);
      if (!b.labels) throw new Error('adversarial stage-2 inputs need labels');
      const call = batchNo++;
      const count = Math.round(o.fraction * indices.length);
      if (count === 0) return b;
      const x0 = b.images.slice(0, count * per);
      const labels = Int32Array.from(b.labels.subarray(0, count), (v) => Number(v));
      const ids = indices.slice(0, count);
      const lo = o.epsMin ?? 0;
      const eps = Float64Array.from({ length: count }, (_, i) => lo + streamRng(seed, 'stage2-adv-eps', call, i).uniform() * (o.epsMax - lo));
      // One snapshot of the model per batch: every step of the attack sees the same weights.
      const oracle: GradientOracle = await source.oracle(call);
      // KL ascent: the reference is the attacked model's prediction on the clean images, once per batch.
      const reference = o.ascent === 'kl' ? softmaxRows(await oracle.logits(x0, ids, 0), oracle.numClasses) : undefined;
      const adv = Float32Array.from(x0);
      const steps = o.attack === 'fgsm' ? 1 : o.iterations;
      if (o.attack === 'pgd') {
        for (let i = 0; i < count; i++) {
          const rng = streamRng(seed, 'stage2-adv-start', call, i);
          for (let p = i * per; p < (i + 1) * per; p++) adv[p] = x0[p] + (rng.uniform() * 2 - 1) * eps[i];
        }
        project(adv, x0, eps, per);
      }
      for (let t = 0; t < steps; t++) {
        const { grad } = await oracle.gradient(reference ? { x: adv, labels, loss: 'kl', reference, ids, step: t } : { x: adv, labels, loss: 'cross-entropy', ids, step: t });
        for (let i = 0; i < count; i++) {
          const a = o.attack === 'fgsm' ? eps[i] : (2.5 * eps[i]) / steps;
          for (let p = i * per; p < (i + 1) * per; p++) adv[p] += grad[p] > 0 ? a : grad[p] < 0 ? -a : 0;
        }
        project(adv, x0, eps, per);
      }
      const images = Float32Array.from(b.images);
      images.set(adv, 0);
      return { images, labels: b.labels };
    },
    release: () => source.release(),
  };
}

function project(adv: Float32Array, x0: Float32Array, eps: Float64Array, per: number): void {
  for (let i = 0; i < eps.length; i++) {
    for (let p = i * per; p < (i + 1) * per; p++) {
      const lo = Math.max(0, x0[p] - eps[i]);
      const hi = Math.min(1, x0[p] + eps[i]);
      adv[p] = adv[p] < lo ? lo : adv[p] > hi ? hi : adv[p];
    }
  }
}
