import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dependencies, runStagesInParallel } from '../../src/pipeline/parallel';

/**
 * The stage scheduler of `s2s train default --jobs N`, with stand-in child
 * processes that log when they start and end: dependencies are respected,
 * never more than N run at once, and a failure stops the stages behind it.
 */
const stages = ['autoencoder', 'classifier:a', 'classifier:b', 's2snet:a', 's2snet:b', 'sets'];

function fakeChild(journal: string, failing = '') {
  // argv: [node, stage]; the stand-in sleeps a little so that runs overlap.
  const script = `
    const fs = require('fs');
    const stage = process.argv[1];
    fs.appendFileSync(${JSON.stringify(journal)}, 'start ' + stage + '\\n');
    process.stderr.write('working on ' + stage + '\\n');
    setTimeout(() => {
      fs.appendFileSync(${JSON.stringify(journal)}, 'end ' + stage + '\\n');
      process.exit(stage === ${JSON.stringify(failing)} ? 3 : 0);
    }, stage.startsWith('classifier') ? 300 : 100);`;
  return { file: process.execPath, args: ['-e', script] };
}

describe('parallel stages', () => {
  it('knows what each stage builds on', () => {
    expect(dependencies('s2snet:a', stages)).toEqual(['autoencoder', 'classifier:a']);
    expect(dependencies('smoothing:a', stages)).toEqual(['autoencoder', 'classifier:a']);
    expect(dependencies('classifier:b', stages)).toEqual([]);
    expect(dependencies('sets', stages)).toEqual(stages.slice(0, 5));
  });

  it('starts a stage only after its dependencies, at most `jobs` at a time', async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 's2s-par-')), 'journal');
    const lines: string[] = [];
    const records = await runStagesInParallel({ stages, jobs: 2, argsFor: (s) => [s], log: (l) => lines.push(l), command: fakeChild(journal) });
    expect(records.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0]);
    const events = readFileSync(journal, 'utf8').trim().split('\n');
    const at = (e: string) => events.indexOf(e);
    let running = 0;
    for (const e of events) {
      running += e.startsWith('start') ? 1 : -1;
      expect(running).toBeLessThanOrEqual(2);
    }
    for (const s of stages) for (const d of dependencies(s, stages)) expect(at(`end ${d}`)).toBeLessThan(at(`start ${s}`));
    // Child stderr comes through, prefixed with the stage.
    expect(lines).toContain('[classifier:a] working on classifier:a');
  });

  it('a failed stage stops the stages that need it and names itself', async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 's2s-par-')), 'journal');
    await expect(runStagesInParallel({ stages, jobs: 2, argsFor: (s) => [s], log: () => undefined, command: fakeChild(journal, 'classifier:a') })).rejects.toThrow(
      /stage classifier:a failed \(exit code 3\)/,
    );
    const events = readFileSync(journal, 'utf8');
    expect(events).not.toMatch(/start s2snet:a/);
    expect(events).not.toMatch(/start sets/);
  });
});
