import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { at, HELM, readJson, readText, readYaml } from './support/repo';

/**
 * helm/values.schema.json is what `helm install` validates values against (Helm uses draft-07):
 * values.yaml must pass it, realistic overrides must pass it, and mistakes a platform team would
 * make must fail it, at the path of the mistake.
 */
type Values = Record<string, any>;

const schema = readJson<object>(join(HELM, 'values.schema.json'));
const defaults = () => readYaml<Values>(join(HELM, 'values.yaml'));
const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);

function errorsFor(values: Values): string[] {
  return validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

function withChange(change: (v: Values) => void): Values {
  const v = defaults();
  change(v);
  return v;
}

describe('values.schema.json', () => {
  test('compiles in strict mode and accepts values.yaml', () => {
    expect(errorsFor(defaults())).toEqual([]);
  });

  test('accepts a GPU install with mounted models, API keys, operator monitoring and a sharded evaluation', () => {
    const v = withChange((v) => {
      v.image.repository = 'registry.example.org/ml/s2s';
      v.gpu.enabled = true;
      v.models.volume = { persistentVolumeClaim: { claimName: 's2s-models' } };
      v.server.apiKeys.existingSecret = 's2s-keys';
      v.server.env = { S2S_MAX_BATCH: '64', S2S_RATE_LIMIT: '600/1m' };
      v.metrics.serviceMonitor = { enabled: true, interval: '30s', scrapeTimeout: '10s', labels: { release: 'kube-prometheus-stack' } };
      v.metrics.prometheusRule.enabled = true;
      v.networkPolicy = { enabled: true, from: [{ podSelector: { matchLabels: { app: 'gateway' } } }], metricsFrom: [{ namespaceSelector: {} }] };
      v.evalJob = { ...v.evalJob, enabled: true, shards: 50, limit: 1000, noise: 'gaussian:0.05,sign:0.05', results: { mountPath: '/results', volume: { persistentVolumeClaim: { claimName: 'eval' } } }, data: { mountPath: '/data', volume: { persistentVolumeClaim: { claimName: 'fashion-mnist', readOnly: true } } } };
      v.podDisruptionBudget.maxUnavailable = '25%';
    });
    expect(errorsFor(v)).toEqual([]);
  });

  test('accepts gRPC off (null) and native gRPC probes on another port', () => {
    expect(errorsFor(withChange((v) => (v.server.grpcPort = null)))).toEqual([]);
    expect(errorsFor(withChange((v) => ((v.server.grpcPort = 9000), (v.probes.grpc = true))))).toEqual([]);
  });

  test('accepts the `global` values Helm hands a chart used as a dependency', () => {
    expect(errorsFor(withChange((v) => (v.global = { imageRegistry: 'registry.example.org' })))).toEqual([]);
  });

  const bad: [string, (v: Values) => void, string][] = [
    ['an unknown top-level key (typo of replicaCount)', (v) => (v.replicas = 3), ' must NOT have additional properties'],
    ['an unknown server key', (v) => (v.server.prot = 8080), '/server must NOT have additional properties'],
    ['a port out of range', (v) => (v.server.port = 70000), '/server/port must be <= 65535'],
    ['a port given as a string', (v) => (v.server.port = '8080'), '/server/port must be integer'],
    ['a gRPC port of 0 (any free port: nothing could route to it)', (v) => (v.server.grpcPort = 0), '/server/grpcPort must be >= 1'],
    ['a gRPC port given as a string', (v) => (v.server.grpcPort = '8081'), '/server/grpcPort must be integer,null'],
    ['gRPC probes given as an object', (v) => (v.probes.grpc = { port: 8081 }), '/probes/grpc must be boolean'],
    ['an unknown execution provider', (v) => (v.server.provider = 'tpu'), '/server/provider must be equal to one of the allowed values'],
    ['a negative drain', (v) => (v.server.drainMs = -1), '/server/drainMs must be >= 0'],
    ['a non-string extra env value', (v) => (v.server.env = { S2S_MAX_BATCH: 64 }), '/server/env/S2S_MAX_BATCH must be string'],
    ['an invalid env variable name', (v) => (v.envNames.port = 'SERVER PORT'), '/envNames/port must match pattern'],
    ['an image pull policy that does not exist', (v) => (v.image.pullPolicy = 'Sometimes'), '/image/pullPolicy must be equal to one of the allowed values'],
    ['a writable root filesystem', (v) => (v.securityContext.readOnlyRootFilesystem = false), '/securityContext/readOnlyRootFilesystem must be equal to constant'],
    ['privilege escalation', (v) => (v.securityContext.allowPrivilegeEscalation = true), '/securityContext/allowPrivilegeEscalation must be equal to constant'],
    ['capabilities not all dropped', (v) => (v.securityContext.capabilities.drop = ['NET_RAW']), '/securityContext/capabilities/drop must contain at least 1 valid item(s)'],
    ['running as root allowed', (v) => (v.podSecurityContext.runAsNonRoot = false), '/podSecurityContext/runAsNonRoot must be equal to constant'],
    ['zero GPUs with the GPU switch on', (v) => ((v.gpu.enabled = true), (v.gpu.count = 0)), '/gpu/count must be >= 1'],
    ['a resource quantity that is not one', (v) => (v.resources.requests.cpu = 'lots'), '/resources/requests/cpu must match pattern'],
    ['a scrape interval that is not a duration', (v) => (v.metrics.serviceMonitor.interval = '15 seconds'), '/metrics/serviceMonitor/interval must match pattern'],
    ['a models volume with two sources', (v) => (v.models.volume = { emptyDir: {}, persistentVolumeClaim: { claimName: 'x' } }), '/models/volume must NOT have more than 1 properties'],
    ['an eval Job without a results volume', (v) => (v.evalJob.enabled = true), '/evalJob/results/volume must NOT have fewer than 1 properties'],
    ['an eval Job without its data set', (v) => ((v.evalJob.enabled = true), (v.evalJob.results.volume = { emptyDir: {} })), '/evalJob/data/volume must NOT have fewer than 1 properties'],
    ['an eps list with the wrong separator', (v) => (v.evalJob.eps = '0.01;0.05'), '/evalJob/eps must match pattern'],
    ['a noise spec without a sigma', (v) => (v.evalJob.noise = 'gaussian'), '/evalJob/noise must match pattern'],
  ];

  test.each(bad)('rejects %s', (_what, change, expected) => {
    const errors = errorsFor(withChange(change));
    expect(errors).toEqual(expect.arrayContaining([expect.stringContaining(expected)]));
  });
});

describe('templates and values agree', () => {
  /** `.Values.a.b.c` paths the templates read (Helm errors on nil pointers only at render time). */
  function valuePaths(): { file: string; path: string[] }[] {
    const dir = join(HELM, 'templates');
    return readdirSync(dir).flatMap((file) =>
      [...readText(join(dir, file)).matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => ({ file, path: m[1].slice(1).split('.') })),
    );
  }

  test('every .Values path used by a template exists in values.yaml', () => {
    const values = defaults();
    const missing = valuePaths()
      .filter(({ path }) => {
        let node: any = values;
        for (const key of path) {
          if (node === null || typeof node !== 'object' || !(key in node)) return true;
          node = node[key];
        }
        return false;
      })
      .map(({ file, path }) => `${file}: .Values.${path.join('.')}`);
    expect(missing).toEqual([]);
    expect(valuePaths().length).toBeGreaterThan(50);
  });

  test('every top-level value is used by some template', () => {
    const used = new Set(valuePaths().map((p) => p.path[0]));
    expect(Object.keys(defaults()).filter((k) => !used.has(k))).toEqual([]);
  });

  test('the chart deploys the version the package builds', () => {
    const chart = readYaml<Values>(join(HELM, 'Chart.yaml'));
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 's2s', type: 'application' });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(chart.appVersion).toBe(readJson<Values>(at('package.json')).version);
  });
});
