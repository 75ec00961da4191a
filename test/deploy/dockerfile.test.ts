import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, Instruction } from 'dockerfile-ast';
import { PROTO_PATH } from '../../src/grpc/proto';
import { loadConfig, PACKAGE_ROOT } from '../../src/server/config';
import { at, readJson, readText } from './support/repo';

/**
 * No Docker engine runs here, so the Dockerfile is parsed (dockerfile-ast) and its properties asserted:
 * which stages a VARIANT build goes through, that the build runs only the README's own setup commands,
 * and that the runtime image is non-root, read-only friendly, healthy-checked and complete.
 */
const df = DockerfileParser.parse(readText(at('Dockerfile')));
const pkg = readJson<{ version: string; scripts: Record<string, string> }>(at('package.json'));

interface Stage {
  name?: string;
  base: string;
  instructions: Instruction[];
}

const stages: Stage[] = df.getFROMs().map((from) => {
  const all = df.getInstructions();
  const start = all.indexOf(from);
  const next = all.findIndex((i, k) => k > start && i.getKeyword() === 'FROM');
  return { name: from.getBuildStage() ?? undefined, base: from.getImageName() ?? '', instructions: all.slice(start + 1, next < 0 ? undefined : next) };
});

const globalArgs = new Map(df.getInitialARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue() ?? '']));
const expand = (s: string, buildArgs: Record<string, string>) => s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n: string) => buildArgs[n] ?? globalArgs.get(n) ?? '');
const fromText = (s: Stage) => df.getFROMs()[stages.indexOf(s)].getArgumentsContent()!.split(/\s+/)[0];

/** The chain of stages the final image is built on, for given build args, ending at an external image. */
function chain(buildArgs: Record<string, string> = {}): { stages: Stage[]; image: string } {
  const out: Stage[] = [];
  let stage = stages[stages.length - 1];
  for (;;) {
    out.push(stage);
    const base = expand(fromText(stage), buildArgs);
    const parent = stages.find((s) => s.name === base);
    if (!parent) return { stages: out, image: base };
    stage = parent;
  }
}

const ofKind = (s: Stage, kw: string) => s.instructions.filter((i) => i.getKeyword() === kw);
/** An instruction's text after its keyword, flags included (getArgumentsContent leaves flags out). */
const args = (i: Instruction) => i.getTextContent().replace(/^\S+\s+/, '').replace(/\\\n\s*/g, ' ').trim();
const envOf = (ss: Stage[]) => new Map(ss.flatMap((s) => ofKind(s, 'ENV')).flatMap((i) => [...args(i).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g)].map((m) => [m[1], m[2]] as const)));
const runCommand = (i: Instruction) => args(i).replace(/--mount=\S+\s+/g, '').trim();

describe('Dockerfile stages', () => {
  test('VARIANT defaults to cpu and both variants resolve to the expected bases', () => {
    expect(globalArgs.get('VARIANT')).toBe('cpu');
    const cpu = chain();
    expect(cpu.image).toBe('node:22-bookworm-slim');
    expect(readJson<{ engines: { node: string } }>(at('package.json')).engines.node).toBe('>=22');
    const cuda = chain({ VARIANT: 'cuda' });
    expect(cuda.image).toMatch(/^nvidia\/cuda:12\.[0-9.]+-cudnn[0-9]*-runtime-ubuntu[0-9.]+$/);
  });

  test('the CUDA runtime gets Node from the official Node image', () => {
    const cudaRuntime = chain({ VARIANT: 'cuda' }).stages.find((s) => s.name === 'runtime-cuda')!;
    const copy = ofKind(cudaRuntime, 'COPY').map(args);
    expect(copy).toContain('--from=install-cuda /usr/local/bin/node /usr/local/bin/node');
  });

  test.each([
    ['cpu', 'skip'],
    ['cuda', 'cuda12'],
  ])('the %s build installs onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=%s', (variant, flag) => {
    const build = stages.find((s) => s.name === 'build')!;
    const buildChain = [build, ...(() => {
      const base = expand(fromText(build), { VARIANT: variant });
      return stages.filter((s) => s.name === base);
    })()];
    expect(envOf(buildChain).get('ONNXRUNTIME_NODE_INSTALL')).toBe(flag);
  });
});

describe('the build runs only what the README setup runs', () => {
  const runs = stages.flatMap((s) => ofKind(s, 'RUN').map((i) => ({ stage: s.name, cmd: runCommand(i) })));

  test('npm ci (one TypeScript compilation), the CUDA provider for the cuda variant, dropping dev dependencies and other platforms\' ONNX Runtime binaries, in the build stage only', () => {
    expect(runs.map((r) => r.stage)).toEqual(['build', 'build', 'build', 'build']);
    expect(runs[0].cmd).toBe('npm ci');
    expect(runs[1].cmd).toMatch(/^if \[ "\$ONNXRUNTIME_NODE_INSTALL" = cuda12 \] && .*; then npm run install:cuda; fi$/);
    expect(runs[2].cmd).toBe('npm prune --omit=dev');
    expect(runs[3].cmd).toMatch(/^arch=\$\(node -p process\.arch\) && cd node_modules\/onnxruntime-node\/bin\/napi-v6 /);
    expect(runs[3].cmd).toContain('! -name linux -exec rm -rf {} +');
    expect(runs[3].cmd).toContain('! -name "$arch" -exec rm -rf {} +');
    // Compiled once: npm ci's prepare script is the only tsc; no separate build step.
    expect(runs.some((r) => /npm run build|tsc/.test(r.cmd))).toBe(false);
    expect(pkg.scripts.prepare).toMatch(/tsc/);
    expect(pkg.scripts['install:cuda']).toBe('ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js');
  });

  test('the README setup runs npm ci, and npm run build is a package script', () => {
    expect(readText(at('README.md'))).toMatch(/npm ci\b/);
    expect(pkg.scripts.build).toBeTruthy();
  });

  test('npm ci sees the sources (the prepare script compiles them)', () => {
    const build = stages.find((s) => s.name === 'build')!;
    const order = build.instructions.map((i) => `${i.getKeyword()} ${args(i)}`);
    const ci = order.findIndex((l) => l.endsWith('npm ci'));
    expect(order.findIndex((l) => /^COPY .*tsconfig\.build\.json/.test(l))).toBeLessThan(ci);
    expect(order.findIndex((l) => /^COPY src /.test(l))).toBeLessThan(ci);
    // No .npmrc: package.json's allowScripts is the install policy (npm warned on the old project key).
    expect(existsSync(at('.npmrc'))).toBe(false);
    if (pkg.scripts.prepare) expect(pkg.scripts.prepare).toMatch(/tsc/);
  });
});

describe('the runtime image', () => {
  const runtime = chain().stages[0];
  const runtimeCopies = ofKind(runtime, 'COPY').map(args);

  test('copies production node_modules, dist, package.json, openapi.yaml, the gRPC proto and the default models', () => {
    expect(runtimeCopies).toEqual(
      expect.arrayContaining([
        '--from=build /app/node_modules ./node_modules',
        '--from=build /app/dist ./dist',
        '--from=build /app/package.json ./package.json',
        'openapi.yaml ./openapi.yaml',
        'proto ./proto',
        'models ./models',
      ]),
    );
    // The gRPC server reads the proto from the package root (dist/'s parent), i.e. /app/proto in the image.
    expect(PROTO_PATH).toBe(join(PACKAGE_ROOT, 'proto', 'grpc_predict_v2.proto'));
    expect(existsSync(PROTO_PATH)).toBe(true);
    expect(ofKind(runtime, 'WORKDIR').map(args)).toEqual(['/app']);
  });

  test('runs as a numeric non-root user, with HOME on /tmp and the baked-in model folder configured', () => {
    const user = ofKind(runtime, 'USER').map(args);
    expect(user).toHaveLength(1);
    const [uid, gid] = user[0].split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    const env = envOf([runtime]);
    expect(env.get('HOME')).toBe('/tmp');
    expect(env.get('S2S_MODELS_DIR')).toBe('/app/models');
    expect(env.get('PORT')).toBe('8080');
    expect(env.get('S2S_GRPC_PORT')).toBe('8081');
    expect(loadConfig({ S2S_GRPC_PORT: env.get('S2S_GRPC_PORT') }).grpcPort).toBe(8081);
    // `docker run -e S2S_GRPC_PORT=` turns gRPC off again: an empty value counts as unset.
    expect(loadConfig({ S2S_GRPC_PORT: '' }).grpcPort).toBeUndefined();
    // probes on their own listener in the image, as in the chart; `-e S2S_HEALTH_PORT=` turns it off
    expect(env.get('S2S_HEALTH_PORT')).toBe('8082');
    expect(loadConfig({ S2S_HEALTH_PORT: env.get('S2S_HEALTH_PORT') }).healthPort).toBe(8082);
    expect(loadConfig({ S2S_HEALTH_PORT: '' }).healthPort).toBeUndefined();
    expect(env.get('HOST')).toBe('0.0.0.0');
    expect(env.get('NODE_ENV')).toBe('production');
    // Nothing runs during the runtime build, and no VOLUME makes a writable spot outside /tmp.
    for (const s of chain().stages.concat(chain({ VARIANT: 'cuda' }).stages).filter((s) => s.name?.startsWith('runtime'))) {
      expect(ofKind(s, 'RUN')).toHaveLength(0);
      expect(ofKind(s, 'VOLUME')).toHaveLength(0);
    }
  });

  test('exposes 8080 (HTTP), 8081 (gRPC) and 8082 (health) and health-checks /v2/health/live with node (no curl in slim images)', () => {
    expect(ofKind(runtime, 'EXPOSE').map(args)).toEqual(['8080 8081 8082']);
    const hc = df.getHEALTHCHECKs();
    expect(hc).toHaveLength(1);
    const text = args(hc[0]);
    expect(text).toMatch(/CMD \["node", "-e", /);
    expect(text).toContain('/v2/health/live');
    // on the health listener when it is on, else on the traffic port
    expect(text).toContain('process.env.S2S_HEALTH_PORT || process.env.PORT');
    expect(text).not.toMatch(/curl|wget/);
  });

  test('starts `serve` the way npm start does, and lets the Job run other subcommands', () => {
    expect(ofKind(runtime, 'ENTRYPOINT').map(args)).toEqual(['["node", "dist/cli/main.js"]']);
    expect(ofKind(runtime, 'CMD').map(args)).toEqual(['["serve"]']);
    expect(pkg.scripts.start).toBe('node dist/cli/main.js serve');
    expect(ofKind(runtime, 'STOPSIGNAL').map(args)).toEqual(['SIGTERM']);
  });
});

describe('the build context', () => {
  /** .dockerignore semantics that this file uses: last matching pattern wins, `!` re-includes, a folder covers its contents. */
  function ignored(path: string): boolean {
    let result = false;
    for (const raw of readText(at('.dockerignore')).split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const negate = line.startsWith('!');
      const pattern = (negate ? line.slice(1) : line).replace(/\/$/, '');
      const re = new RegExp(
        '^' + pattern.split('/').map((seg) => (seg === '**' ? '.*' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))).join('/') + '(/.*)?$',
      );
      if (re.test(path)) result = !negate;
    }
    return result;
  }

  const contextSources = stages.flatMap((s) =>
    ofKind(s, 'COPY')
      .map(args)
      .filter((a) => !a.startsWith('--from'))
      .flatMap((a) => a.split(/\s+/).slice(0, -1)),
  );

  test('every file the Dockerfile copies from the context is let through .dockerignore', () => {
    expect(contextSources.length).toBeGreaterThan(5);
    expect(contextSources.filter(ignored)).toEqual([]);
    expect(ignored('src/cli/main.ts')).toBe(false);
    expect(ignored('models/fashion-mnist/manifest.json')).toBe(false);
    expect(ignored('proto/grpc_predict_v2.proto')).toBe(false);
  });

  test('host builds, git history, tests and reports stay out of the context', () => {
    for (const p of ['node_modules/x/index.js', 'dist/cli/main.js', '.git/HEAD', 'test/deploy/x.ts', 'reports/a.html', 'helm/values.yaml', 'src/x.log']) {
      expect({ p, ignored: ignored(p) }).toEqual({ p, ignored: true });
    }
  });

  // The service's openapi.yaml and the trained default set (models/) land from other work; until they do,
  // their checks are reported as skipped rather than failed.
  for (const src of [...new Set(contextSources)]) {
    const pending = !existsSync(at(src)) && (src === 'models' || src === 'openapi.yaml');
    (pending ? test.skip : test)(pending ? `SKIPPED until ${src} is committed: the image build copies it` : `${src} exists in the repository`, () => {
      expect(existsSync(at(src))).toBe(true);
    });
  }
});
