import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The protocol lives in docs/protocol.md: every citation of it, in code comments and docs, names a
 * section it has, and nothing cites a PROTOCOL.md that is not in the repository.
 */
const ROOT = join(__dirname, '..', '..');
const protocol = readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8');
const sections = new Set([...protocol.matchAll(/^## (.+)$/gm)].map((m) => m[1].trim()));
const anchors = new Set([...sections].map((s) => s.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|md|js)$/.test(f) ? [p] : [];
  });
}
const sources = ['src', 'docs', 'test', 'bench', 'scripts'].flatMap((d) => files(join(ROOT, d))).concat(join(ROOT, 'README.md'));

describe('docs/protocol.md citations', () => {
  test('nothing cites PROTOCOL.md (it is not in the repository)', () => {
    const here = relative(ROOT, __filename);
    expect(sources.filter((f) => relative(ROOT, f) !== here && readFileSync(f, 'utf8').includes('PROTOCOL.md')).map((f) => relative(ROOT, f))).toEqual([]);
  });

  test('every `docs/protocol.md, "Section"` and protocol.md#anchor names a section that exists', () => {
    const cited: string[] = [];
    for (const f of sources.filter((x) => x !== __filename && !x.endsWith(join('docs', 'protocol.md')))) {
      const text = readFileSync(f, 'utf8').replace(/\n\s*\*\s*/g, ' ');
      for (const m of text.matchAll(/docs\/protocol\.md,? \(?"([^"]+)"/g)) if (!sections.has(m[1])) cited.push(`${relative(ROOT, f)}: "${m[1]}"`);
      for (const m of text.matchAll(/(?<![\w-])protocol\.md#([a-z0-9-]+)/g)) if (!anchors.has(m[1])) cited.push(`${relative(ROOT, f)}: #${m[1]}`);
    }
    expect(cited).toEqual([]);
    expect(sections).toEqual(new Set(['Symbols', 'Training', 'Attack settings', 'Attacks', 'Noise layers', 'Metrics', 'Gradient analysis', 'Transferability', 'Detection']));
  });
});
