import type { CertifyResults } from '../certify/results';
import { certifiedAccuracy } from '../certify/results';
import type { ChartSpec } from './vega';

/**
 * Certified accuracy against L2 radius (Cohen et al. 2019, Figure 6/7;
 * Salman et al. 2020, Figure 3): for each base classifier and σ, the
 * fraction of test images classified correctly with a certified radius of
 * at least r. The curves start at the smoothed classifier's clean accuracy
 * and fall to 0 before the ceiling σ·Φ⁻¹(α^{1/n}) that n draws can certify
 * at all (drawn dotted); a larger σ starts lower and reaches further — the
 * shape of the published curves, which is what to compare against.
 */

/** Largest radius CERTIFY can return with n draws at level α: every draw agreed, p̲A = α^{1/n}. */
export function radiusCeiling(sigma: number, n: number, alpha: number, quantile: (p: number) => number): number {
  return sigma * quantile(Math.pow(alpha, 1 / n));
}

export function certifiedAccuracyChart(r: CertifyResults, quantile: (p: number) => number): ChartSpec {
  const maxSigma = Math.max(...r.settings.sigmas);
  const top = radiusCeiling(maxSigma, r.settings.n, r.settings.alpha, quantile) * 1.05;
  const step = Math.max(0.005, Math.round((top / 200) * 1000) / 1000);
  const values: Record<string, unknown>[] = [];
  for (const m of r.models) {
    for (let radius = 0; radius <= top + 1e-9; radius += step) {
      values.push({ model: m.name, sigma: `σ = ${m.sigma}`, curve: `${m.name}, σ = ${m.sigma}`, radius: Math.round(radius * 1000) / 1000, accuracy: certifiedAccuracy(m.images, radius) });
    }
  }
  const ceilings = r.settings.sigmas.map((s) => ({ sigma: `σ = ${s}`, radius: radiusCeiling(s, r.settings.n, r.settings.alpha, quantile) }));
  return {
    title: { text: `Certified accuracy against L2 radius (n = ${r.settings.n}, α = ${r.settings.alpha}, ${r.data.rows.length} test images)`, anchor: 'start' },
    width: 560,
    height: 300,
    layer: [
      {
        data: { values },
        mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
        encoding: {
          x: { field: 'radius', type: 'quantitative', title: 'L2 radius (pixels in [0, 1])' },
          y: { field: 'accuracy', type: 'quantitative', title: 'certified accuracy', scale: { domain: [0, 1] } },
          color: { field: 'model', type: 'nominal', title: 'base classifier', legend: { labelLimit: 320 } },
          strokeDash: { field: 'sigma', type: 'nominal', title: 'σ' },
          detail: { field: 'curve', type: 'nominal' },
        },
      },
      {
        data: { values: ceilings },
        mark: { type: 'rule', strokeDash: [2, 3], color: '#888' },
        encoding: { x: { field: 'radius', type: 'quantitative' }, tooltip: [{ field: 'sigma', type: 'nominal' }, { field: 'radius', type: 'quantitative', format: '.3f', title: 'largest certifiable radius' }] },
      },
    ],
  };
}
