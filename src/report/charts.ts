import { rocFromHistograms } from '../evaluation/detection';
import { EvalResults } from '../evaluation/results';
import { TransferResults } from '../evaluation/transfer';
import { ChartSpec } from './vega';

/**
 * The report's charts as vega-lite specs (data inline). Pure functions of the
 * result documents, so a chart can be checked without rendering it.
 */

const AXIS_ACCURACY = { field: 'accuracy', type: 'quantitative', title: 'top-1 accuracy', scale: { domain: [0, 1] } };

/**
 * Accuracy against ε for one noise configuration, one panel per attack and
 * one line per setting (the paper's Figures 4–7). ε = 0 is the clean
 * accuracy of the judged model.
 */
export function accuracyChart(r: EvalResults, noise: string): ChartSpec {
  const values: Record<string, unknown>[] = [];
  for (const e of r.entries) {
    if (e.noise !== noise || e.metrics.adversarialAccuracy === null) continue;
    values.push({ attack: e.attack, setting: e.setting, eps: e.eps, accuracy: e.metrics.adversarialAccuracy });
  }
  const attacks = r.config.attacks.filter((a) => values.some((v) => v.attack === a));
  for (const attack of attacks) {
    for (const setting of r.config.settings) {
      const e = r.entries.find((x) => x.attack === attack && x.setting === setting && x.noise === noise);
      if (e?.metrics.cleanAccuracy != null) values.push({ attack, setting, eps: 0, accuracy: e.metrics.cleanAccuracy });
    }
  }
  return {
    title: { text: noise === 'none' ? 'Accuracy under attack (no noise layer)' : `Accuracy under attack, noise ${noise}`, anchor: 'start' },
    data: { values },
    facet: { column: { field: 'attack', type: 'nominal', sort: attacks, title: null, header: { labelFontSize: 13, labelFontWeight: 'bold' } } },
    spec: {
      width: 210,
      height: 170,
      mark: { type: 'line', point: true, strokeWidth: 2 },
      encoding: {
        x: { field: 'eps', type: 'quantitative', title: 'ε (normalised L∞)' },
        y: AXIS_ACCURACY,
        color: { field: 'setting', type: 'nominal', sort: r.config.settings, title: 'setting' },
        tooltip: [
          { field: 'setting', type: 'nominal' },
          { field: 'eps', type: 'quantitative' },
          { field: 'accuracy', type: 'quantitative', format: '.3f' },
        ],
      },
    },
  };
}

/** Detection ROC at one ε, one panel per attack, one curve per setting, against clean images of the same noise. */
export function rocChart(r: EvalResults, eps: number, noise = 'none'): ChartSpec | null {
  const clean = r.detection?.clean.find((d) => d.noise === noise);
  if (!clean) return null;
  const values: Record<string, unknown>[] = [];
  const attacks: string[] = [];
  for (const e of r.entries) {
    if (e.eps !== eps || e.noise !== noise) continue;
    const roc = rocFromHistograms(clean.scoreHistogram, e.counts.scoreHistogram);
    if (!roc) continue;
    if (!attacks.includes(e.attack)) attacks.push(e.attack);
    for (const [i, p] of roc.points.entries()) values.push({ attack: e.attack, curve: `${e.setting} (AUC ${roc.auc.toFixed(3)})`, setting: e.setting, order: i, fpr: p.falsePositiveRate, tpr: p.truePositiveRate });
  }
  if (values.length === 0) return null;
  for (const attack of attacks) for (const [i, v] of [0, 1].entries()) values.push({ attack, curve: 'chance', setting: 'chance', order: i, fpr: v, tpr: v });
  return {
    title: { text: `Detection ROC at ε = ${eps} (KL(f(x) ‖ f(s(x))) on adversarial vs clean images)`, anchor: 'start' },
    data: { values },
    facet: { column: { field: 'attack', type: 'nominal', sort: attacks, title: null, header: { labelFontSize: 13, labelFontWeight: 'bold' } } },
    spec: {
      width: 190,
      height: 190,
      mark: { type: 'line' },
      encoding: {
        x: { field: 'fpr', type: 'quantitative', title: 'false-positive rate', scale: { domain: [0, 1] } },
        y: { field: 'tpr', type: 'quantitative', title: 'detection rate', scale: { domain: [0, 1] } },
        order: { field: 'order', type: 'quantitative' },
        color: { field: 'setting', type: 'nominal', sort: [...r.config.settings, 'chance'], title: 'setting' },
        strokeDash: { condition: { test: "datum.setting === 'chance'", value: [4, 4] }, value: [1, 0] },
        tooltip: [{ field: 'curve', type: 'nominal' }],
      },
    },
  };
}

/** Relative accuracy of every (source → target) pair, one heat-map per ε (the paper's Figure 8). */
export function transferChart(t: TransferResults): ChartSpec {
  const names = t.classifiers.map((c) => c.name);
  return {
    title: { text: `Transferability of ${t.attack.toUpperCase()}: relative accuracy of the target`, anchor: 'start' },
    data: { values: t.cells.map((c) => ({ source: c.source, target: c.target, eps: c.eps, relative: c.relativeAccuracy ?? 0 })) },
    facet: { column: { field: 'eps', type: 'ordinal', title: 'ε', sort: t.eps } },
    spec: {
      width: Math.max(120, 42 * names.length),
      height: Math.max(120, 42 * names.length),
      encoding: {
        x: { field: 'target', type: 'nominal', sort: names, title: 'evaluated on' },
        y: { field: 'source', type: 'nominal', sort: names, title: 'crafted on' },
      },
      layer: [
        { mark: 'rect', encoding: { color: { field: 'relative', type: 'quantitative', scale: { domain: [0, 1], scheme: 'viridis' }, title: 'relative accuracy' } } },
        {
          mark: { type: 'text', fontSize: 11 },
          encoding: {
            text: { field: 'relative', type: 'quantitative', format: '.2f' },
            color: { condition: { test: 'datum.relative > 0.6', value: 'black' }, value: 'white' },
          },
        },
      ],
    },
  };
}
