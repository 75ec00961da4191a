/**
 * Server-side chart rendering: vega-lite specs compiled to vega and drawn to
 * SVG by vega's headless View, so report.html needs no script to show its
 * charts. vega and vega-lite are ESM-only; a dynamic import (kept as a real
 * import() by TypeScript's node16 module mode) loads them from this CommonJS
 * code.
 */

/** A vega-lite specification (the JSON the vega-lite docs describe). */
export type ChartSpec = Record<string, unknown>;

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

type VegaModule = typeof import('vega', { with: { 'resolution-mode': 'import' } });
type VegaLiteModule = typeof import('vega-lite', { with: { 'resolution-mode': 'import' } });

let modules: Promise<[VegaModule, VegaLiteModule]> | undefined;

function load(): Promise<[VegaModule, VegaLiteModule]> {
  modules ??= Promise.all([import('vega'), import('vega-lite')]);
  return modules;
}

/** One chart as an SVG document string. */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const [vega, vl] = await load();
  const compiled = vl.compile({ $schema: VEGA_LITE_SCHEMA, ...spec } as Parameters<VegaLiteModule['compile']>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
