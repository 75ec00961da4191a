import { at, readText } from './repo';

/** docs/runbook.md split into its `## ` sections, keyed by GitHub's anchor for the heading. */
export function runbookSections(): Map<string, string> {
  const text = readText(at('docs', 'runbook.md'));
  const sections = new Map<string, string>();
  for (const part of text.split(/^## /m).slice(1)) {
    const heading = part.split('\n')[0].trim();
    const anchor = heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
    sections.set(anchor, part);
  }
  return sections;
}

/** The jq programs of a section's shell blocks, in order (`jq -c '…'` or `jq -r '…'`). */
export function jqPrograms(section: string): Array<{ flags: string; program: string }> {
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((b) => [...b.matchAll(/jq (-[cr]) '([^']+)'/g)].map((m) => ({ flags: m[1], program: m[2] })));
}
