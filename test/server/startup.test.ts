import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { writeTinySet } from '../models/tiny-set';
import { call, expectConforms, postImage, spawnServer, testImage } from './harness';

const ROOT = join(__dirname, '..', '..');

/** `s2s serve` that is expected to refuse to start: its exit code and stderr. */
function serveOnce(env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('s2s serve start-up', () => {
  it('refuses a model set whose file does not match its sha256, naming the file (exit 2, one line)', () => {
    const set = writeTinySet();
    appendFileSync(join(set.dir, 'classifier.onnx'), 'x');
    const r = serveOnce({ S2S_MODELS_DIR: set.modelsDir, S2S_MODEL: 'tiny' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^s2s: model set .*tiny: classifier\.onnx \(files\.classifier\) has sha256 [0-9a-f]{64} but the manifest says [0-9a-f]{64}; refusing to serve a modified model\n$/);
  });

  it('names the model sets it found when the default is missing, and rejects bad settings', () => {
    const set = writeTinySet();
    expect(serveOnce({ S2S_MODELS_DIR: set.modelsDir, S2S_MODEL: 'fashion-mnist' })).toEqual({ status: 2, stderr: `s2s: model set 'fashion-mnist' not found in ${set.modelsDir} (found: tiny)\n` });
    expect(serveOnce({ S2S_MODELS_DIR: set.modelsDir, S2S_MODEL: 'tiny', S2S_MAX_BATCH: 'many' })).toEqual({ status: 2, stderr: "s2s: S2S_MAX_BATCH must be a whole number, got 'many'\n" });
  });

  it('says so when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const set = writeTinySet();
      const r = serveOnce({ S2S_MODELS_DIR: set.modelsDir, S2S_MODEL: 'tiny', PORT: String(port) });
      expect(r).toEqual({ status: 2, stderr: `s2s: cannot listen on 127.0.0.1:${port} (EADDRINUSE)\n` });
    } finally {
      blocker.close();
    }
  });

  it('serves several model sets; requests pick one with `model`; operator noise settings override the manifests', async () => {
    const a = writeTinySet({ name: 'alpha', classes: 3 });
    writeTinySet({ name: 'beta', channels: 3, size: 16, classes: 4 }, a.modelsDir);
    const s = spawnServer({ S2S_LOAD_MODELS: '*', S2S_NOISE_KIND: 'uniform', S2S_NOISE: '0.03', S2S_NOISE_MAX: '0.05' }, a.modelsDir, 'alpha');
    await s.ready;
    try {
      const models = (await call(`${s.url}/v1/models`)).json();
      expectConforms('listModels', 200, models);
      expect(models.models.map((m: { name: string; default: boolean; labels: string[] }) => [m.name, m.default, m.labels.length])).toEqual([
        ['alpha', true, 3],
        ['beta', false, 4],
      ]);
      for (const m of models.models) expect(m.noise).toEqual({ kind: 'uniform', sigma: 0.03, maxSigma: 0.05 });
      const png = await testImage('png', 40, 3);
      const viaDefault = (await postImage(`${s.url}/v1/classify?topK=10`, png)).json();
      const viaBeta = (await postImage(`${s.url}/v1/classify?model=beta&topK=10`, png)).json();
      expect([viaDefault.model.name, viaDefault.results[0].top.length]).toEqual(['alpha', 3]);
      expect([viaBeta.model.name, viaBeta.results[0].top.length]).toEqual(['beta', 4]);
      expect(viaBeta.results[0].noise).toEqual({ kind: 'uniform', sigma: 0.03 });
      expect((await postImage(`${s.url}/v1/classify?noise=0.06`, png)).status).toBe(400);
      expect((await call(`${s.url}/v2/models/beta`)).json().inputs[0].shape).toEqual([-1, 3, 16, 16]);
      const metrics = (await call(`${s.url}/metrics`)).body.toString();
      expect(metrics).toMatch(/^s2s_model_info\{model="beta",version="0\.0\.1-test",execution_provider="cpu"\} 1$/m);
    } finally {
      await s.close();
    }
  });
});
