import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { writeTinySet } from '../models/tiny-set';

/**
 * The request's log record travels with the request (the routes hand it to
 * the pipeline), not through AsyncLocalStorage: with one entered, Node runs
 * a hook on every promise of the process, and a request makes hundreds.
 * Each request still gets its own model, image count and status in its log
 * line when two are served at once.
 */
describe('request record without AsyncLocalStorage', () => {
  it('serves V2 infer and /v1/classify at once, logs each with its own fields, and never enters an AsyncLocalStorage', () => {
    const set = writeTinySet();
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'support', 'request-context-probe.ts')], {
      cwd: join(__dirname, '..', '..'),
      env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', S2S_MODELS_DIR: set.modelsDir, S2S_MODEL: set.manifest.name, S2S_THREADS: '1', S2S_DRAIN_MS: '0', S2S_MAX_EVENT_LOOP_DELAY_MS: '0' },
      encoding: 'utf8',
      timeout: 60000,
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.statuses).toEqual([200, 200]);
    const line = (id: string) => out.lines.find((l: { reqId: string }) => l.reqId === id);
    expect(line('ctx-v2')).toMatchObject({ model: out.model, images: 2, status: 200 });
    expect(line('ctx-classify')).toMatchObject({ model: out.model, images: 1, status: 200 });
    expect(out.entered).toBe(0);
  });
});
