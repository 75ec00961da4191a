/**
 * Where two JSON values first differ, as a dotted path (`config.params.iterations`,
 * `images.ids[3]`), or null when they are equal: refusals name the field
 * instead of the whole block. Keys are compared in sorted order, and a key
 * missing on one side counts as a difference.
 */
export function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  if (Object.is(a, b)) return null;
  const here = path || '(the whole value)';
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b ? null : here;
  if (Array.isArray(a) !== Array.isArray(b)) return here;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${here} (length ${a.length} vs ${b.length})`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort();
  for (const k of keys) {
    const child = path ? `${path}.${k}` : k;
    if (!(k in ra) || !(k in rb)) return child;
    const d = firstDifference(ra[k], rb[k], child);
    if (d) return d;
  }
  return null;
}
