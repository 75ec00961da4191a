/** Small helpers for writing the report's HTML by hand: escaping and tables. */

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function pct(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : `${(100 * v).toFixed(digits)}%`;
}

export function num(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);
}

/** A table from header cells and rows of already-escaped HTML cells; the first `textColumns` are left-aligned labels. */
export function table(head: string[], rows: string[][], cls = '', textColumns = 1): string {
  const cell = (tag: string, c: string, i: number) => `<${tag}${i < textColumns ? ' class="t"' : ''}>${c}</${tag}>`;
  const th = head.map((h, i) => cell('th', h, i)).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n');
  return `<table class="${esc(cls)}"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1280px; color: #1d1d1f; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; } h3 { margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .88rem; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: right; }
th { background: #f5f5f7; } th.t, td.t { text-align: left; }
.chart { margin: 1rem 0; overflow-x: auto; }
.meta { color: #555; font-size: .9rem; } .meta code { font-size: .85rem; }
.gallery td { text-align: center; vertical-align: top; } .gallery img, .maps img { image-rendering: pixelated; display: block; margin: 2px auto; }
.gallery .cap, .maps .cap { font-size: .75rem; color: #444; max-width: 110px; margin: 0 auto; }
.bad { color: #b00020; font-weight: 600; } .note { background: #fff8e1; border-left: 4px solid #f5b400; padding: .6rem .9rem; }
`;
