import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors';

/** Names of the model sets under a models folder: each subfolder holding a manifest.json. */
export function discoverModelSets(modelsDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(modelsDir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch (e) {
    throw new UserError(`cannot list model sets in ${modelsDir}: ${(e as Error).message}`);
  }
  return entries.filter((n) => existsSync(join(modelsDir, n, 'manifest.json'))).sort();
}

/**
 * Which sets to serve: the default one plus the listed extras (`*` = every
 * set found). The default always comes first.
 */
export function selectModelSets(modelsDir: string, defaultName: string, extra: string[]): string[] {
  const found = discoverModelSets(modelsDir);
  const wanted = extra.includes('*') ? [defaultName, ...found] : [defaultName, ...extra];
  const names = [...new Set(wanted)];
  const missing = names.filter((n) => !found.includes(n));
  if (missing.length) {
    throw new UserError(`model set${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')} not found in ${modelsDir} (found: ${found.join(', ') || 'none'})`);
  }
  return names;
}

/** The loaded model sets by name, with the default for requests that name none. */
export class ModelRegistry<M extends { readonly name: string }> {
  private readonly byName: Map<string, M>;

  constructor(models: M[], readonly defaultName: string) {
    this.byName = new Map(models.map((m) => [m.name, m]));
    if (!this.byName.has(defaultName)) throw new Error(`default model set '${defaultName}' is not among the loaded sets`);
  }

  /** The named set (or the default); a 404 UserError listing what is served otherwise. */
  get(name?: string): M {
    const m = this.byName.get(name ?? this.defaultName);
    if (!m) throw new UserError(`unknown model '${name}'; served: ${this.names().join(', ')}`, 404);
    return m;
  }

  /** Serves `model` under its name from now on; returns the one it replaces, if any (model control). */
  put(model: M): M | undefined {
    const old = this.byName.get(model.name);
    this.byName.set(model.name, model);
    return old;
  }

  /** Stops serving a set (never the default); returns it. */
  remove(name: string): M {
    if (name === this.defaultName) throw new UserError(`'${name}' is the default model set and cannot be unloaded; load a replacement instead`);
    const m = this.get(name);
    this.byName.delete(name);
    return m;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  all(): M[] {
    return [...this.byName.values()];
  }
}
