import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { logDestination } from '../../src/server/log-destination';

/** Polls until `check` holds (no time is asserted: the limit only ends a test that would hang). */
async function eventually(check: () => boolean, limitMs = 10000): Promise<void> {
  const until = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('log destination', () => {
  const dir = mkdtempSync(join(tmpdir(), 's2s-log-'));

  it('buffers lines off the request path and writes them within the flush interval', async () => {
    const file = join(dir, 'buffered.log');
    const fd = openSync(file, 'w');
    const dest = logDestination(50, fd);
    const log = pino(dest);
    log.info({ request: 1 }, 'request completed');
    // nothing is written while the line is logged
    expect(readFileSync(file, 'utf8')).toBe('');
    await eventually(() => readFileSync(file, 'utf8').includes('"request":1'));
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
    // destroy() closes the descriptor
    (dest as unknown as { destroy(): void }).destroy();
  });

  it('writes buffered lines on flushSync (what pino does at exit)', () => {
    const file = join(dir, 'exit.log');
    const fd = openSync(file, 'w');
    const dest = logDestination(60000, fd) as unknown as pino.DestinationStream & { flushSync(): void; destroy(): void };
    const log = pino(dest);
    for (let i = 0; i < 3; i++) log.info({ i }, 'line');
    expect(readFileSync(file, 'utf8')).toBe('');
    dest.flushSync();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(3);
    dest.destroy();
  });

  it('with 0 writes each line at once', () => {
    const file = join(dir, 'sync.log');
    const fd = openSync(file, 'w');
    const log = pino(logDestination(0, fd));
    log.info({ request: 2 }, 'request completed');
    expect(readFileSync(file, 'utf8')).toContain('"request":2');
    closeSync(fd);
  });
});
