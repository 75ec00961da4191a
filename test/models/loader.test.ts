import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelSet } from '../../src/models/loader';
import { parseManifest } from '../../src/models/manifest';
import { ModelRegistry, selectModelSets } from '../../src/models/registry';
import { writeTinySet } from './tiny-set';

const load = (dir: string) => loadModelSet(dir).then(() => 'loaded', (e: Error) => e.message);

describe('model-set loader', () => {
  it('loads a set whose files match their sha256, with absolute paths', async () => {
    const { dir } = writeTinySet();
    const set = await loadModelSet(dir);
    expect(set.name).toBe('tiny');
    expect(set.paths.classifier).toBe(join(dir, 'classifier.onnx'));
    expect(set.paths.s2snet).toBe(join(dir, 's2snet.onnx'));
  });

  it('refuses a set whose file was modified, naming the file and both hashes', async () => {
    const { dir, manifest } = writeTinySet();
    appendFileSync(join(dir, 's2snet.onnx'), Buffer.from([0]));
    const msg = await load(dir);
    expect(msg).toMatch(/s2snet\.onnx \(files\.s2snet\) has sha256 [0-9a-f]{64} but the manifest says/);
    expect(msg).toContain(manifest.files.s2snet!.sha256);
  });

  it('refuses a missing file and a path that leaves the folder', async () => {
    const { dir, manifest } = writeTinySet();
    const write = (m: object) => writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    write({ ...manifest, files: { ...manifest.files, autoencoder: { path: 'ae.onnx', sha256: 'a'.repeat(64) } } });
    expect(await load(dir)).toMatch(/files\.autoencoder \(ae\.onnx\) is missing/);
    write({ ...manifest, files: { ...manifest.files, classifier: { path: '../tiny/classifier.onnx', sha256: manifest.files.classifier.sha256 } } });
    expect(await load(dir)).toMatch(/not a valid model-set manifest: \/files\/classifier\/path/);
  });

  it('reports malformed JSON and a missing manifest', async () => {
    const { dir, modelsDir } = writeTinySet();
    writeFileSync(join(dir, 'manifest.json'), '{ "schemaVersion": 1,');
    expect(await load(dir)).toMatch(/manifest\.json is not valid JSON/);
    mkdirSync(join(modelsDir, 'empty'));
    expect(await load(join(modelsDir, 'empty'))).toMatch(/manifest\.json not found/);
  });
});

describe('manifest schema', () => {
  const base = () => JSON.parse(readFileSync(join(writeTinySet().dir, 'manifest.json'), 'utf8'));
  const problem = (m: object) => {
    try {
      parseManifest(m, 'm.json');
      return 'valid';
    } catch (e) {
      return (e as Error).message;
    }
  };

  it('accepts the documented example shape, extra keys included', () => {
    expect(problem({ ...base(), training: { seed: 1 } })).toBe('valid');
  });

  it('names each problem', () => {
    const m = base();
    expect(problem({ ...m, schemaVersion: 2 })).toMatch(/\/schemaVersion must be equal to constant/);
    expect(problem({ ...m, input: { ...m.input, channels: 2 } })).toMatch(/\/input\/channels/);
    expect(problem({ ...m, input: { ...m.input, std: [0] } })).toMatch(/\/input\/std\/0 must be > 0/);
    expect(problem({ ...m, input: { ...m.input, channels: 3 } })).toMatch(/valid/); // one mean/std value for all channels is fine
    expect(problem({ ...m, input: { ...m.input, channels: 3, mean: [0, 0] } })).toMatch(/input\.mean has 2 values/);
    expect(problem({ ...m, defence: { chain: [{ stage: 'jpeg' }] } })).toMatch(/\/defence\/chain\/0/);
    expect(problem({ ...m, defence: { chain: [{ stage: 'noise', sigma: 1 }] } })).toMatch(/\/defence\/chain\/0/);
    expect(problem({ ...m, defence: { chain: [{ stage: 'autoencoder' }] } })).toMatch(/needs files\.autoencoder/);
    expect(problem({ ...m, noise: { kind: 'gaussian', sigma: 0.2, maxSigma: 0.1 } })).toMatch(/noise\.sigma \(0\.2\) exceeds noise\.maxSigma/);
    expect(problem({ ...m, labels: ['a', 'a'] })).toMatch(/duplicates/);
    expect(problem({ ...m, files: { ...m.files, s2snet: { path: 's.onnx', sha256: 'XYZ' } } })).toMatch(/\/files\/s2snet\/sha256/);
    // A smoothing denoiser must be one of the set's (hashed) files, with σ in (0, 1] and clip stated.
    expect(problem({ ...m, smoothing: { sigma: 0.25, denoiser: 's2snet', clip: true } })).toBe('valid');
    expect(problem({ ...m, smoothing: { sigma: 0.25, denoiser: 'smoothing', clip: true } })).toMatch(/smoothing\.denoiser 'smoothing' names no entry of files/);
    expect(problem({ ...m, smoothing: { sigma: 0, denoiser: 's2snet', clip: true } })).toMatch(/\/smoothing\/sigma must be > 0/);
    expect(problem({ ...m, smoothing: { sigma: 0.25, denoiser: 's2snet' } })).toMatch(/\/smoothing must have required property 'clip'/);
    const { detection: _d, ...noDetection } = m;
    expect(problem(noDetection)).toMatch(/must have required property 'detection'/);
  });
});

describe('model registry', () => {
  it('selects the default first, extras by name or all with *', () => {
    const { modelsDir } = writeTinySet({ name: 'a' });
    writeTinySet({ name: 'b' }, modelsDir);
    writeTinySet({ name: 'c' }, modelsDir);
    expect(selectModelSets(modelsDir, 'b', [])).toEqual(['b']);
    expect(selectModelSets(modelsDir, 'b', ['a'])).toEqual(['b', 'a']);
    expect(selectModelSets(modelsDir, 'c', ['*'])).toEqual(['c', 'a', 'b']);
    expect(() => selectModelSets(modelsDir, 'x', [])).toThrow(/model set 'x' not found in .* \(found: a, b, c\)/);
  });

  it('answers unknown names with a 404 listing the served sets', () => {
    const r = new ModelRegistry([{ name: 'a' }, { name: 'b' }], 'a');
    expect(r.get().name).toBe('a');
    expect(r.get('b').name).toBe('b');
    expect(() => r.get('z')).toThrow(expect.objectContaining({ statusCode: 404, message: "unknown model 'z'; served: a, b" }));
  });
});
