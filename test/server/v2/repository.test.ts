import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinySet } from '../../models/tiny-set';
import { GrpcClients, connect, grpcAddress } from '../../grpc/client';
import { TestServer, call, expectConforms, postImage, postJson, spawnServer, testImage } from '../harness';

/**
 * Model control (Triton's repository extension) on a live server: admin-only
 * access, index, load of a new set, a replacement under steady traffic with
 * no failed request, a corrupt set refused while the served one keeps
 * serving, and unload.
 */
describe('model control: POST /v2/repository/…', () => {
  const ADMIN = 'admin-key-0123456789abcdef';
  const USER = 'user-key-0123456789abcdef';
  const admin = { authorization: `Bearer ${ADMIN}` };
  const user = { 'x-api-key': USER };
  let s: TestServer & { ready: Promise<void> };
  let modelsDir: string;
  let png: Buffer;
  let rpc: GrpcClients;

  const zeros = { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], data: new Array(784).fill(7) }] };
  const control = (path: string, headers: Record<string, string> = admin, body = '') => call(`${s.url}/v2/repository${path}`, { method: 'POST', headers, body });

  /** A new version of `name` (other weights, version `version`) written over its folder. */
  const publish = (name: string, version: string, seed: number) => {
    const fresh = writeTinySet({ name, seed });
    const manifest = JSON.parse(readFileSync(join(fresh.dir, 'manifest.json'), 'utf8'));
    writeFileSync(join(fresh.dir, 'manifest.json'), JSON.stringify({ ...manifest, version }, null, 2));
    cpSync(fresh.dir, join(modelsDir, name), { recursive: true });
  };

  beforeAll(async () => {
    modelsDir = mkdtempSync(join(tmpdir(), 's2s-repo-'));
    writeTinySet({ name: 'tiny' }, modelsDir);
    writeTinySet({ name: 'spare', seed: 5 }, modelsDir);
    s = spawnServer({ S2S_MODEL_CONTROL: 'true', S2S_ADMIN_API_KEYS: ADMIN, S2S_API_KEYS: USER, S2S_GRPC_PORT: '0' }, modelsDir, 'tiny');
    await s.ready;
    rpc = connect(grpcAddress(s));
    png = await testImage('png');
  });
  afterAll(async () => {
    rpc?.close();
    await s?.close();
  });

  it('only admin keys: none is 401, a service key 403; index lists served and unserved sets', async () => {
    expect((await control('/index', {})).status).toBe(401);
    const forbidden = await control('/index', user);
    expect(forbidden.status).toBe(403);
    expectConforms('repositoryIndex', 403, forbidden.json());
    expect(forbidden.json().error).toMatch(/no admin scope/);
    // an admin key is not a service key
    expect((await postJson(`${s.url}/v2/models/tiny/infer`, zeros, admin)).status).toBe(401);
    const index = await control('/index');
    expect(index.status).toBe(200);
    expectConforms('repositoryIndex', 200, index.json());
    expect(index.json()).toEqual([
      { name: 'spare', version: '0.0.1-test', state: 'UNAVAILABLE', reason: 'unloaded' },
      { name: 'tiny', version: '0.0.1-test', state: 'READY' },
    ]);
    expect((await control('/index', admin, '{"ready": true}')).json()).toEqual([{ name: 'tiny', version: '0.0.1-test', state: 'READY' }]);
    expect((await call(`${s.url}/v2`, { headers: user })).json().extensions).toEqual(['binary_tensor_data', 'model_repository']);
  });

  it('loads a set that was not served, then unloads it; the default cannot be unloaded', async () => {
    expect((await postJson(`${s.url}/v2/models/spare/infer`, zeros, user)).status).toBe(404);
    const load = await control('/models/spare/load');
    expect(load.status).toBe(200);
    expectConforms('repositoryModelLoad', 200, load.json());
    expect((await postJson(`${s.url}/v2/models/spare/infer`, zeros, user)).status).toBe(200);
    // a loaded set is certified too, and not once it is unloaded
    expect((await postJson(`${s.url}/v2/models/spare-certified/infer`, { ...zeros, parameters: { n: 200 } }, user)).status).toBe(200);
    expect((await control('/models/spare/unload')).json()).toEqual({ name: 'spare', version: '0.0.1-test', state: 'UNAVAILABLE' });
    expect((await postJson(`${s.url}/v2/models/spare/infer`, zeros, user)).status).toBe(404);
    expect((await postJson(`${s.url}/v2/models/spare-certified/infer`, { ...zeros, parameters: { n: 200 } }, user)).status).toBe(404);
    const dflt = await control('/models/tiny/unload');
    expect([dflt.status, dflt.json().error]).toEqual([400, expect.stringMatching(/default model set/)]);
    expect((await control('/models/nothing/load')).status).toBe(404);
  });

  it('replaces the served set under steady HTTP V1, HTTP V2 and gRPC traffic with no failed request; a corrupt set is refused and changes nothing', async () => {
    let stop = false;
    const statuses: number[] = [];
    const versions: string[] = [];
    // versions of the requests sent once the load had answered: the swap is done by then, so each must be the new one
    let loaded = false;
    const sentAfterLoad: string[] = [];
    const grpcRequest = { model_name: 'tiny', inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28] }], raw_input_contents: [Buffer.alloc(784, 7)] };
    const worker = async (i: number) => {
      while (!stop) {
        const after = loaded;
        const seen = (v: string) => {
          versions.push(v);
          if (after) sentAfterLoad.push(v);
        };
        if (i % 3 === 2) {
          try {
            const r = await rpc.inference('ModelInfer', grpcRequest, user);
            statuses.push(200);
            seen(r.model_version);
          } catch (e) {
            statuses.push(-(e as { code: number }).code);
          }
        } else if (i % 3 === 1) {
          const r = await postJson(`${s.url}/v2/models/tiny/infer`, zeros, user);
          statuses.push(r.status);
          if (r.status === 200) seen(r.json().model_version);
        } else {
          const r = await postImage(`${s.url}/v1/classify`, png, 'image/png', user);
          statuses.push(r.status);
          if (r.status === 200) seen(r.json().model.version);
        }
      }
    };
    const traffic = Promise.all(Array.from({ length: 6 }, (_, i) => worker(i)));
    await new Promise((r) => setTimeout(r, 300));

    publish('tiny', '0.0.2-test', 9);
    const load = await control('/models/tiny/load');
    loaded = true;
    expect([load.status, load.json()]).toEqual([200, { name: 'tiny', version: '0.0.2-test', state: 'READY' }]);
    await new Promise((r) => setTimeout(r, 300));

    // a corrupt replacement: the bytes change but the manifest's sha256 does not
    const file = join(modelsDir, 'tiny', 's2snet.onnx');
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 0xff;
    writeFileSync(file, bad);
    const refused = await control('/models/tiny/load');
    expect(refused.status).toBe(400);
    expect(refused.json().error).toMatch(/sha256/);
    writeFileSync(file, good);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await traffic;

    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    const switched = versions.indexOf('0.0.2-test');
    expect(switched).toBeGreaterThan(0);
    expect(versions.slice(0, switched).every((v) => v === '0.0.1-test')).toBe(true);
    // after the swap every request is answered by the new version, the corrupt load notwithstanding (requests
    // already in flight at the swap may still finish on the old set's workers, in any order, so they are not counted)
    expect(sentAfterLoad.length).toBeGreaterThan(6);
    expect(sentAfterLoad.filter((v) => v !== '0.0.2-test')).toEqual([]);
    expect((await call(`${s.url}/v2/models/tiny`, { headers: user })).json().versions).toEqual(['0.0.2-test']);
    // certification follows the swap: its base classifier lives in the new set's workers, so it
    // still answers once the old set's workers are gone
    await new Promise((r) => setTimeout(r, 500));
    const cert = await postJson(`${s.url}/v2/models/tiny-certified/infer`, { ...zeros, parameters: { n: 200 } }, user);
    expect([cert.status, cert.json().model_version]).toEqual([200, '0.0.2-test']);
    expect((await call(`${s.url}/metrics`)).body.toString()).toMatch(/s2s_model_info\{model="tiny",version="0\.0\.2-test",execution_provider="cpu"\} 1\n(?![\s\S]*version="0\.0\.1-test")/);
  });
});
