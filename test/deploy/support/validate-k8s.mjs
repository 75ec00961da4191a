// Validates Kubernetes objects (a JSON array on stdin) against the Kubernetes OpenAPI schemas of the
// kubernetes-models packages (ESM-only, hence this separate Node process). Prints a JSON array with one
// entry per object: { kind, name, error } where error is null when the object is valid.
import { readFileSync } from 'node:fs';

const PACKAGES = { 'monitoring.coreos.com': '@kubernetes-models/prometheus-operator', 'keda.sh': '@kubernetes-models/keda' };

async function modelFor(apiVersion, kind) {
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const pkg = PACKAGES[group] ?? 'kubernetes-models';
  const mod = await import(`${pkg}/${apiVersion}/${kind}`);
  return mod[kind];
}

const objects = JSON.parse(readFileSync(0, 'utf8'));
const out = [];
for (const o of objects) {
  let error = null;
  try {
    const Model = await modelFor(o.apiVersion, o.kind);
    if (!Model) throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
    new Model(o).validate();
  } catch (e) {
    error = String(e.message ?? e).split('\n').slice(0, 6).join(' | ');
  }
  out.push({ kind: o.kind, name: o.metadata?.name, error });
}
process.stdout.write(JSON.stringify(out));
