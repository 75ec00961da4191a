import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/server/config';
import { K8sObject, helmBinary, render, renderError } from './support/helm';
import { HELM } from './support/repo';

/**
 * The chart rendered by a real `helm template` (support/helm.ts says where the binary comes from), every
 * object checked against the Kubernetes OpenAPI schemas (kubernetes-models, prometheus-operator and KEDA
 * models), and the defaults that follow from the pod checked on the rendered objects.
 */
const helm = helmBinary();
const suite = helm ? describe : process.env.CI ? describe : describe.skip;

function validate(objects: K8sObject[]): Array<{ kind: string; name: string; error: string | null }> {
  const r = spawnSync(process.execPath, [join(__dirname, 'support', 'validate-k8s.mjs')], { input: JSON.stringify(objects), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const deployment = (objects: K8sObject[]) => objects.find((o) => o.kind === 'Deployment')!;
const container = (objects: K8sObject[]) => deployment(objects).spec.template.spec.containers[0];
const env = (objects: K8sObject[], name: string) => container(objects).env.find((e: { name: string }) => e.name === name);

const volumes = { 'evalJob.data.volume': { persistentVolumeClaim: { claimName: 'fashion-mnist' } }, 'evalJob.results.volume': { persistentVolumeClaim: { claimName: 'results' } } };
const CASES: Array<[string, Record<string, unknown>]> = [
  ['defaults', {}],
  ['everything on', { 'ingress.enabled': true, 'metrics.serviceMonitor.enabled': true, 'metrics.prometheusRule.enabled': true, 'networkPolicy.enabled': true, 'evalJob.enabled': true, ...volumes, 'autoscaling.queueDepth.enabled': true, 'server.apiKeys.existingSecret': 'keys', 'server.trustedProxies': ['10.0.0.0/8'] }],
  ['GPU with KEDA', { 'gpu.enabled': true, 'autoscaling.keda.enabled': true, 'autoscaling.keda.serverAddress': 'http://prometheus.monitoring:9090', 'image.digest': `sha256:${'a'.repeat(64)}` }],
  ['fixed replicas', { 'autoscaling.enabled': false, 'podDisruptionBudget.enabled': false, 'topologySpread.enabled': false, 'grafanaDashboard.enabled': false }],
  ['gRPC probes', { 'probes.grpc': true, 'networkPolicy.enabled': true }],
  ['gRPC off', { 'server.grpcPort': null, 'networkPolicy.enabled': true }],
  ['health listener off', { 'server.healthPort': null, 'networkPolicy.enabled': true, 'metrics.serviceMonitor.enabled': true }],
];

suite('helm template (real Helm) + Kubernetes schemas', () => {
  test('helm lint passes', () => {
    const out = execFileSync(helm!, ['lint', HELM, '--set-json', `evalJob.data.volume=${JSON.stringify(volumes['evalJob.data.volume'])}`], { encoding: 'utf8' });
    expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test.each(CASES)('%s: every rendered object is valid against its schema', (_name, values) => {
    const objects = render(values);
    expect(objects.length).toBeGreaterThanOrEqual(3);
    const results = validate(objects);
    expect(results.filter((r) => r.error)).toEqual([]);
    expect(results.map((r) => r.kind)).toContain('Deployment');
  });

  test('the validator does reject a malformed object (the check can fail)', () => {
    const objects = render();
    const bad = structuredClone(deployment(objects));
    bad.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    expect(validate([bad])[0].error).toMatch(/containerPort must be integer/);
    // Native gRPC probes are checked too: their port must be a number (Kubernetes takes no named port there).
    const badProbe = structuredClone(deployment(render({ 'probes.grpc': true })));
    badProbe.spec.template.spec.containers[0].readinessProbe.grpc.port = 'grpc';
    expect(validate([badProbe])[0].error).toMatch(/readinessProbe\/grpc\/port must be integer/);
  });

  test('ONNX Runtime threads come from the CPU limit (a pod with limits.cpu 2 gets S2S_THREADS=2), else the request', () => {
    const limited = render({ resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } } });
    expect(env(limited, 'S2S_THREADS')).toEqual({ name: 'S2S_THREADS', valueFrom: { resourceFieldRef: { containerName: 's2s', resource: 'limits.cpu', divisor: '1' } } });
    // The kubelet resolves limits.cpu 2 with divisor 1 to "2"; the service reads that as 2 intra-op threads.
    expect(loadConfig({ S2S_THREADS: '2' }).threads).toBe(2);
    expect(env(render(), 'S2S_THREADS').valueFrom.resourceFieldRef.resource).toBe('requests.cpu');
    expect(env(render({ 'server.threads': 3 }), 'S2S_THREADS')).toEqual({ name: 'S2S_THREADS', value: '3' });
  });

  test('the grace period covers preStop + drain + request timeout, and the guard refuses less', () => {
    const d = deployment(render());
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(5 + 5 + 30);
    expect(env(render(), 'S2S_REQUEST_TIMEOUT_MS').value).toBe('30000');
    expect(renderError({ terminationGracePeriodSeconds: 39 })).toContain('terminationGracePeriodSeconds (39) must be at least lifecycle.preStopSleepSeconds + server.drainMs/1000 + server.requestTimeoutMs/1000 (5 + 5 + 30 = 40)');
    expect(renderError({ terminationGracePeriodSeconds: 45, 'server.requestTimeoutMs': 60000 })).toContain('(5 + 5 + 60 = 70)');
    expect(() => render({ terminationGracePeriodSeconds: 40 })).not.toThrow();
  });

  test('autoscaling: CPU by default, queue depth as a Pods metric, or KEDA instead of the HPA', () => {
    const hpa = render({ 'autoscaling.queueDepth.enabled': true, 'autoscaling.targetCPUUtilizationPercentage': null }).find((o) => o.kind === 'HorizontalPodAutoscaler')!;
    expect(hpa.spec.metrics).toEqual([{ type: 'Pods', pods: { metric: { name: 's2s_queue_depth' }, target: { type: 'AverageValue', averageValue: '8' } } }]);
    const keda = render({ 'autoscaling.keda.enabled': true, 'autoscaling.keda.serverAddress': 'http://prom:9090' });
    expect(keda.some((o) => o.kind === 'HorizontalPodAutoscaler')).toBe(false);
    const so = keda.find((o) => o.kind === 'ScaledObject')!;
    expect(so.spec.triggers[0].metadata.query).toBe('sum(s2s_queue_depth{job="s2s", namespace="ml", service="rel-s2s"})');
    expect(renderError({ 'autoscaling.keda.enabled': true })).toContain('autoscaling.keda.serverAddress');
    expect(renderError({ 'autoscaling.targetCPUUtilizationPercentage': null })).toContain('autoscaling needs at least one metric');
  });

  test('gRPC: container port, Service port (appProtocol grpc), S2S_GRPC_PORT and NetworkPolicy by default; HTTP probes unless probes.grpc', () => {
    const objects = render({ 'networkPolicy.enabled': true });
    expect(container(objects).ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'grpc', containerPort: 8081, protocol: 'TCP' },
      { name: 'health', containerPort: 8082, protocol: 'TCP' },
    ]);
    expect(env(objects, 'S2S_GRPC_PORT')).toEqual({ name: 'S2S_GRPC_PORT', value: '8081' });
    expect(loadConfig({ S2S_GRPC_PORT: env(objects, 'S2S_GRPC_PORT').value }).grpcPort).toBe(8081);
    const service = objects.find((o) => o.kind === 'Service')!;
    expect(service.spec.ports).toEqual([
      { name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' },
      { name: 'grpc', port: 8081, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' },
      { name: 'health', port: 8082, targetPort: 'health', protocol: 'TCP' },
    ]);
    const policy = objects.find((o) => o.kind === 'NetworkPolicy')!;
    expect(policy.spec.ingress[0].ports).toEqual([
      { port: 'http', protocol: 'TCP' },
      { port: 'grpc', protocol: 'TCP' },
      { port: 'health', protocol: 'TCP' },
    ]);
    const c = container(objects);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect({ probe, grpc: c[probe].grpc, port: c[probe].httpGet?.port }).toEqual({ probe, grpc: undefined, port: 'health' });

    const probed = container(render({ 'probes.grpc': true, 'server.grpcPort': 9000 }));
    expect(probed.startupProbe.grpc).toEqual({ port: 9000 });
    expect(probed.readinessProbe.grpc).toEqual({ port: 9000 });
    expect(probed.startupProbe.httpGet).toBeUndefined();
    expect(probed.readinessProbe.httpGet).toBeUndefined();
    // Liveness stays HTTP: health says NOT_SERVING while draining, which must not restart the pod.
    expect(probed.livenessProbe).toMatchObject({ httpGet: { path: '/v2/health/live', port: 'health' } });
    expect(probed.ports[1]).toEqual({ name: 'grpc', containerPort: 9000, protocol: 'TCP' });
  });

  test('health listener by default: S2S_HEALTH_PORT, container and Service port "health", HTTP probes, pod annotation and ServiceMonitor there', () => {
    const objects = render({ 'metrics.serviceMonitor.enabled': true });
    expect(env(objects, 'S2S_HEALTH_PORT')).toEqual({ name: 'S2S_HEALTH_PORT', value: '8082' });
    expect(loadConfig({ S2S_HEALTH_PORT: env(objects, 'S2S_HEALTH_PORT').value }).healthPort).toBe(8082);
    const c = container(objects);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'health' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'health' });
    expect(deployment(objects).spec.template.metadata.annotations['prometheus.io/port']).toBe('8082');
    expect(objects.find((o) => o.kind === 'ServiceMonitor')!.spec.endpoints[0].port).toBe('health');

    // another port moves all of it
    const moved = render({ 'server.healthPort': 9102 });
    expect(container(moved).ports.find((p: { name: string }) => p.name === 'health')).toEqual({ name: 'health', containerPort: 9102, protocol: 'TCP' });
    expect(env(moved, 'S2S_HEALTH_PORT').value).toBe('9102');
    expect(deployment(moved).spec.template.metadata.annotations['prometheus.io/port']).toBe('9102');
  });

  test('server.healthPort null: S2S_HEALTH_PORT empty (off), probes, annotation and ServiceMonitor back on "http", no health port anywhere', () => {
    const objects = render({ 'server.healthPort': null, 'networkPolicy.enabled': true, 'metrics.serviceMonitor.enabled': true });
    expect(env(objects, 'S2S_HEALTH_PORT')).toEqual({ name: 'S2S_HEALTH_PORT', value: '' });
    expect(loadConfig({ S2S_HEALTH_PORT: '' }).healthPort).toBeUndefined();
    const c = container(objects);
    expect(c.ports.map((p: { name: string }) => p.name)).toEqual(['http', 'grpc']);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect([probe, c[probe].httpGet.port]).toEqual([probe, 'http']);
    expect(deployment(objects).spec.template.metadata.annotations['prometheus.io/port']).toBe('8080');
    expect(objects.find((o) => o.kind === 'ServiceMonitor')!.spec.endpoints[0].port).toBe('http');
    expect(objects.find((o) => o.kind === 'Service')!.spec.ports.map((p: { name: string }) => p.name)).toEqual(['http', 'grpc']);
    expect(objects.find((o) => o.kind === 'NetworkPolicy')!.spec.ingress[0].ports.map((p: { port: string }) => p.port)).toEqual(['http', 'grpc']);
  });

  test('server.grpcPort null: no gRPC port anywhere, S2S_GRPC_PORT empty (the service reads that as off), and gRPC probes refused', () => {
    const objects = render({ 'server.grpcPort': null, 'networkPolicy.enabled': true });
    expect(container(objects).ports.map((p: { name: string }) => p.name)).toEqual(['http', 'health']);
    expect(env(objects, 'S2S_GRPC_PORT')).toEqual({ name: 'S2S_GRPC_PORT', value: '' });
    expect(loadConfig({ S2S_GRPC_PORT: '' }).grpcPort).toBeUndefined();
    expect(objects.find((o) => o.kind === 'Service')!.spec.ports.map((p: { name: string }) => p.name)).toEqual(['http', 'health']);
    expect(objects.find((o) => o.kind === 'NetworkPolicy')!.spec.ingress[0].ports).toEqual([{ port: 'http', protocol: 'TCP' }, { port: 'health', protocol: 'TCP' }]);
    expect(renderError({ 'server.grpcPort': null, 'probes.grpc': true })).toContain('probes.grpc needs server.grpcPort');
  });

  test('revision history, topology spread, image digest, trusted proxies, ingress, runbook links', () => {
    const objects = render({ 'image.digest': `sha256:${'b'.repeat(64)}`, 'server.trustedProxies': ['10.0.0.0/8', '192.168.0.1'], 'ingress.enabled': true, 'metrics.prometheusRule.enabled': true, 'metrics.prometheusRule.runbookBaseUrl': 'https://git.example/s2s/blob/main/' });
    const d = deployment(objects);
    expect(d.spec.revisionHistoryLimit).toBe(5);
    expect(d.spec.template.spec.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    expect(container(objects).image).toBe(`s2s@sha256:${'b'.repeat(64)}`);
    expect(env(objects, 'S2S_TRUST_PROXY').value).toBe('10.0.0.0/8,192.168.0.1');
    const ingress = objects.find((o) => o.kind === 'Ingress')!;
    expect(ingress.spec.rules[0].http.paths[0].backend.service).toEqual({ name: 'rel-s2s', port: { name: 'http' } });
    const rule = objects.find((o) => o.kind === 'PrometheusRule')!;
    const urls = rule.spec.groups.flatMap((g: { rules: Array<{ annotations?: { runbook_url?: string } }> }) => g.rules.map((r) => r.annotations?.runbook_url)).filter(Boolean);
    expect(urls.length).toBeGreaterThan(0);
    for (const u of urls) expect(u).toMatch(/^https:\/\/git\.example\/s2s\/blob\/main\/docs\/runbook\.md#s2s[a-z0-9]+$/);
  });
});

describe('the chart folder', () => {
  test('holds no symlinks (helm package and some registries drop or refuse them)', () => {
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      const st = lstatSync(p);
      return st.isSymbolicLink() ? [p] : st.isDirectory() ? walk(p) : [];
    });
    expect(walk(HELM)).toEqual([]);
  });
});
