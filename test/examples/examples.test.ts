import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { grpcAddress } from '../grpc/client';
import { TestServer, spawnServer } from '../server/harness';

/**
 * Every script in examples/ run as a reader would run it, against the
 * service serving the committed default model set, with the committed
 * Fashion-MNIST test images: they must finish cleanly and name the right
 * garment for each image. Python runs on Debian's python3 with
 * python3-requests, python3-numpy, python3-grpcio and python3-grpc-tools.
 */

const ROOT = join(__dirname, '..', '..');
const PYTHON = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import requests, numpy, grpc, grpc_tools'], { stdio: 'ignore' }).status === 0);
const TRUTH: Record<string, string> = {
  'ankle-boot.png': 'Ankle boot',
  'bag.png': 'Bag',
  'dress.png': 'Dress',
  'pullover.png': 'Pullover',
  'shirt.png': 'Shirt',
  'sneaker.png': 'Sneaker',
  't-shirt.png': 'T-shirt/top',
  'trouser.png': 'Trouser',
};

describe('examples/ against the default model set', () => {
  let s: TestServer & { ready: Promise<void> };
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    s = spawnServer({ S2S_GRPC_PORT: '0' }, join(ROOT, 'models'), 'fashion-mnist');
    await s.ready;
    env = { ...process.env, S2S_URL: s.url, S2S_GRPC: grpcAddress(s) };
  }, 60000);
  afterAll(() => s?.close());

  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 60000 });
    expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
    return r.stdout;
  };

  it('examples/images holds real Fashion-MNIST test images, each classified right by the default set', () => {
    const out = run('npx', ['tsx', 'examples/typescript/classify.ts']);
    for (const [file, label] of Object.entries(TRUTH)) expect(out).toContain(`${file} → ${label} (`);
    expect(out).toMatch(/batch of 3: Ankle boot, Bag, Dress/);
    expect(out).toMatch(/a broken image is refused: 400 bad_input/);
  }, 90000);

  it('examples/curl.sh', () => {
    const out = run('sh', ['examples/curl.sh']);
    expect(out).toContain('"label":"Shirt"');
    expect(out).toContain('"label":"Sneaker"');
    expect(out).toMatch(/wrote .*s2s-seen\.png \(\d+ bytes\)/);
    expect(out).toContain('does not fit the model');
  }, 60000);

  const python = (name: string, check: (out: string) => void) =>
    it(`examples/python/${name}`, () => {
      if (!PYTHON) {
        if (process.env.CI) throw new Error('CI is set but python3 with requests, numpy, grpcio and grpc_tools is missing (apt-get install python3-requests python3-numpy python3-grpcio python3-grpc-tools)');
        console.warn(`python3 with requests/numpy/grpcio/grpc_tools not found; skipping examples/python/${name} (set CI to make this an error)`);
        return;
      }
      check(run(PYTHON, [`examples/python/${name}`]));
    }, 60000);

  python('classify_requests.py', (out) => {
    for (const [file, label] of Object.entries(TRUTH)) expect(out).toContain(`${file} -> ${label} (`);
    expect(out).toContain('a broken image is refused: 415');
  });
  python('v2_infer.py', (out) => {
    expect(out).toMatch(/JSON {3}shirt\.png -> Shirt/);
    expect(out).toMatch(/binary sneaker\.png -> Sneaker/);
    expect(out).toContain('JSON and binary agree: True');
  });
  python('grpc_infer.py', (out) => {
    expect(out).toContain('live: True ready: True');
    expect(out).toMatch(/trouser\.png -> Trouser/);
    expect(out).toContain('a wrong shape is refused: INVALID_ARGUMENT');
  });

  it('the README runs the committed images', () => {
    const readme = require('node:fs').readFileSync(join(ROOT, 'README.md'), 'utf8') as string;
    const used = [...readme.matchAll(/@(examples\/images\/[\w.-]+)/g)].map((m) => m[1]);
    expect(used.length).toBeGreaterThan(0);
    for (const f of used) expect([f, existsSync(join(ROOT, f))]).toEqual([f, true]);
    expect(readme).not.toMatch(/@shirt\.png/);
  });
});
