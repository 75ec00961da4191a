import { DetectorResults } from '../evaluation/detector-comparison';

/** summary.md of `s2s eval detectors`: one table per setting, candidates as rows (docs/detectors.md). */

const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)} %`);
const ci = (c: [number, number]) => `[${(100 * c[0]).toFixed(1)}, ${(100 * c[1]).toFixed(1)}]`;
const num = (x: number | null) => (x === null ? '–' : x.toFixed(3));
const pValue = (p: number) => (p < 0.001 ? '< 0.001' : p.toFixed(3));

export function detectorsMarkdown(r: DetectorResults): string {
  const c = r.config;
  const lines: string[] = [
    `# Detection scores on ${r.modelSet.name} ${r.modelSet.version}`,
    '',
    `${r.data.selected} test images (${r.data.test}, seed ${c.seed}); ${c.attack.toUpperCase()}-${c.iterations} at ε = ${c.eps}, rounded to the 8-bit grid. ` +
      `Thresholds at ${pct(c.falsePositiveRate)} false positives on ${r.data.calibrationImages} clean held-out images (${r.data.calibration}). ` +
      `KL threshold recomputed ${r.klThresholdCheck.recomputed.toPrecision(6)}, manifest ${r.klThresholdCheck.manifest.toPrecision(6)}. Feature layer: \`${c.featureLayer}\`.`,
    '',
    'Detection rate: successful adversarial examples flagged at the threshold, 95 % Wilson interval. Clean FPR: clean test images of the selection flagged. ' +
      'vs KL: successful examples only this score flags / only the KL flags, exact McNemar p.',
    '',
  ];
  for (const s of r.settings) {
    lines.push(`## ${s.setting}: ${s.description}`, '', `${s.attacked} images attacked, ${s.successful} successful.`, '');
    lines.push('| score | AUC (all) | AUC (successful) | threshold | detection rate | 95 % CI | clean FPR | vs KL | p |', '|---|---|---|---|---|---|---|---|---|');
    for (const cand of r.candidates) {
      const x = s.scores[cand.name];
      const v = s.versusKl[cand.name];
      const versus = cand.name === 'kl' ? '–' : `${v.onlyCandidate} / ${v.onlyKl}`;
      lines.push(
        `| ${cand.name} | ${num(x.auc)} | ${num(x.aucSuccessful)} | ${x.threshold.toPrecision(4)} | ${pct(x.detectionRate)} (${x.detected}/${x.successful}) | ${ci(x.detectionCi)} | ${pct(x.cleanRate)} | ${versus} | ${cand.name === 'kl' ? '–' : pValue(v.pValue)} |`,
      );
    }
    const offGrid = r.candidates.filter((cand) => s.scores[cand.name].offGrid > 0);
    if (offGrid.length) lines.push('', `Scores beyond the AUC grid's last edge (1e2), counted as ties: ${offGrid.map((cand) => `${cand.name} ${s.scores[cand.name].offGrid}`).join(', ')}.`);
    lines.push('');
  }
  lines.push('## Scores and their cost', '', '| score | definition | forward passes per image (f, s) |', '|---|---|---|');
  for (const cand of r.candidates) lines.push(`| ${cand.name} | ${cand.description} | ${cand.passes.f}, ${cand.passes.s} |`);
  const t = r.run.scoringSeconds;
  lines.push('', `Scoring time in this run: ${t.singlePass.toFixed(1)} s for the single-pass scores together, ${t.noiseDraws.toFixed(1)} s for the ${c.noise.draws} noise draws of kl-noise (${(t.noiseDraws / Math.max(t.singlePass, 1e-9)).toFixed(1)}×). Whole run ${r.run.seconds.toFixed(0)} s.`, '');
  return lines.join('\n');
}
