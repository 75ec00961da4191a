import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import type { CertifyResults } from '../../src/certify/results';
import { main } from '../../src/cli/main';
import { loadFashionMnist } from '../../src/data/fashionMnist';
import { TestServer, call, postImage, postJson, spawnServer, testImage } from './harness';

/**
 * POST /v1/certify on the committed default set (f behind its smoothing
 * denoiser d, manifest `smoothing`), served on
 * loopback. With the test-only seeded noise, the service must give exactly
 * the certificate `s2s certify` writes for the same image and seed; without
 * it the answer says the draws came from the CSPRNG. n is small here (200
 * draws) to keep the test cheap; the arithmetic is the same at 10,000.
 */

const ROOT = join(__dirname, '..', '..');
const MODELS = join(ROOT, 'models');
const DATA = join(ROOT, 'test', 'fixtures', 'fashion-mnist-small');
const SEED = 7;
const KEY = 'certify-test-key-0123456789';

const ENV = { S2S_THREADS: '1', S2S_CERTIFY_BATCH: '100', S2S_CERTIFY_N: '200', S2S_CERTIFY_MAX_N: '400' };

/** The test-only seeded service (support/seeded-certify-server.ts) on loopback. */
async function seededServer(row: number): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'support', 'seeded-certify-server.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', S2S_MODELS_DIR: MODELS, S2S_MODEL: 'fashion-mnist', CERTIFY_TEST_SEED: String(SEED), CERTIFY_TEST_ROW: String(row), ...ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"ready"')) resolve(JSON.parse(line).url);
    });
    child.on('exit', (code) => reject(new Error(`seeded server exited (${code}): ${stderr}`)));
  });
  return { url, child };
}

describe('POST /v1/certify against s2s certify', () => {
  let out: string;
  let cli: CertifyResults;
  let png: Buffer;
  let seeded: { url: string; child: ChildProcess };

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 's2s-certify-'));
    const code = await main(['node', 's2s', 'certify', '--models', join(MODELS, 'fashion-mnist'), '--base', 'f∘d', '--sigma', '0.25', '--n', '200', '--n0', '100', '--alpha', '0.001', '--limit', '1', '--seed', String(SEED), '--batch', '100', '--threads', '1', '--data', DATA, '--no-report', '--out', out]);
    expect(code).toBe(0);
    cli = JSON.parse(readFileSync(join(out, 'certify.json'), 'utf8'));
    const row = cli.data.rows[0];
    const ds = loadFashionMnist({ dir: DATA, split: 'test' });
    png = await sharp(Buffer.from(ds.pixels.subarray(row * 784, (row + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    // The CLI seeds image `row`'s streams with (seed, row); the service's test-only noise does the same for image 0.
    seeded = await seededServer(row);
  });

  afterAll(async () => {
    seeded?.child.kill('SIGTERM');
    rmSync(out, { recursive: true, force: true });
  });

  it('gives the CLI’s certificate for the same image and seed', async () => {
    const r = await postImage(`${seeded.url}/v1/certify?n=200&alpha=0.001&sigma=0.25`, png);
    expect(r.status).toBe(200);
    const body = r.json();
    const c = cli.models[0].images[0];
    expect(body.certification).toEqual({ base: 'f∘d', denoiserSigma: 0.25, norm: 'L2', sigma: 0.25, n: 200, n0: 100, alpha: 0.001, noise: 'seeded (test only)' });
    expect(cli.models[0]).toMatchObject({ name: 'f∘d', clip: true });
    const got = body.results[0];
    expect({ classIndex: got.classIndex, countA: got.countA }).toEqual({ classIndex: c.prediction === 'abstain' ? null : c.prediction, countA: c.countA });
    expect(got.radius).toBeCloseTo(c.radius, 12);
    expect(got.pALower).toBeCloseTo(c.pALower, 12);
    expect(got.timings.runs).toBe(3);
  });

  it('gives the same certificate as the V2 model <set>-certified', async () => {
    const row = cli.data.rows[0];
    const pixels = Array.from(loadFashionMnist({ dir: DATA, split: 'test' }).pixels.subarray(row * 784, (row + 1) * 784));
    const meta = (await call(`${seeded.url}/v2/models/fashion-mnist-certified`)).json();
    expect(meta.outputs.map((o: { name: string }) => o.name)).toEqual(['class', 'radius', 'p_a_lower']);
    const r = await postJson(`${seeded.url}/v2/models/fashion-mnist-certified/infer`, {
      id: 'cert-1',
      parameters: { n: 200, alpha: 0.001, sigma: 0.25 },
      inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'UINT8', data: pixels }],
      outputs: [{ name: 'class' }, { name: 'radius' }],
    });
    expect(r.status).toBe(200);
    const body = r.json();
    const c = cli.models[0].images[0];
    expect(body.parameters).toEqual({ base: 'f∘d', denoiser_sigma: 0.25, norm: 'L2', sigma: 0.25, n: 200, n0: 100, alpha: 0.001, noise: 'seeded (test only)' });
    expect(body.outputs[0].data).toEqual([c.prediction === 'abstain' ? -1 : c.prediction]);
    expect(body.outputs[1].data[0]).toBeCloseTo(c.radius, 6);
    const plain = await postJson(`${seeded.url}/v2/models/fashion-mnist/infer`, { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'UINT8', data: pixels }], outputs: [{ name: 'radius' }] });
    expect(plain.status).toBe(400);
    expect(plain.json().error).toMatch(/unknown output 'radius'; the model's outputs are probs, score, adversarial, noise_sigma, reconstruction/);
  });
});

describe('POST /v1/certify in production form', () => {
  let s: TestServer;
  const auth = { authorization: `Bearer ${KEY}` };
  beforeAll(async () => {
    const server = spawnServer({ ...ENV, S2S_API_KEYS: KEY, S2S_CERTIFY_MAX_ALPHA: '0.01' }, MODELS, 'fashion-mnist');
    await server.ready;
    s = server;
  });
  afterAll(() => s?.close());

  it('certifies with CSPRNG noise and says so', async () => {
    const img = await testImage('png');
    const r = await postJson(`${s.url}/v1/certify`, { images: [img.toString('base64'), img.toString('base64')], n: 100 }, auth);
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.certification).toMatchObject({ noise: 'csprng', n: 100, alpha: 0.001, sigma: 0.25, norm: 'L2' });
    expect(body.results).toHaveLength(2);
    for (const c of body.results) {
      expect(c.class === 'abstain' ? c.radius === 0 && c.classIndex === null : c.radius >= 0 && typeof c.classIndex === 'number').toBe(true);
    }
    const metrics = (await call(`${s.url}/metrics`)).body.toString();
    expect(metrics).toMatch(/s2s_certified_radius_count\{model="fashion-mnist"\} 2/);
    expect(metrics).toMatch(/s2s_certify_abstentions_total\{model="fashion-mnist"\} \d/);
  });

  it('needs the API key like every other route', async () => {
    const r = await postImage(`${s.url}/v1/certify`, Buffer.from('x'));
    expect(r.status).toBe(401);
  });

  it('refuses n and alpha beyond the operator’s bounds with a 400 that names them', async () => {
    const img = await testImage('png');
    const tooMany = await postImage(`${s.url}/v1/certify?n=5000`, img, 'image/png', auth);
    expect([tooMany.status, tooMany.json().error]).toEqual([400, "n 5000 exceeds the operator's maximum 400 draws per image"]);
    const loose = await postImage(`${s.url}/v1/certify?alpha=0.2`, img, 'image/png', auth);
    expect(loose.status).toBe(400);
    expect(loose.json().error).toMatch(/alpha 0.2 exceeds the operator's maximum 0.01/);
    const bad = await postImage(`${s.url}/v1/certify`, Buffer.from('not an image'), 'image/png', auth);
    expect([bad.status, typeof bad.json().error]).toEqual([415, 'string']);
  });
});
