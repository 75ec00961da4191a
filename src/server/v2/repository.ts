import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { discoverModelSets } from '../../models/registry';
import { readManifest } from '../../models/loader';
import type { ServedModel } from '../../serving/served-model';
import { UserError } from '../../util/errors';
import { matchKey, presentedKey } from '../auth';
import type { Config } from '../config';
import { loadServedModel } from '../model-loading';
import { OpenApiDoc, route } from '../openapi';
import { parseInferJson } from './infer-request';

/**
 * Model control, as Triton's model repository extension: list the sets in
 * the models folder, load (or reload) one, unload one. Off unless
 * S2S_MODEL_CONTROL is on, and then only for admin keys.
 *
 * A load verifies the set exactly as start-up does (loadServedModel) and
 * only then swaps it in, so a bad set never disturbs the served one. The set
 * it replaces is retired, not dropped: every HTTP request that began before
 * the swap (it may hold the old set and not yet have queued its images) and
 * everything in the old batcher finishes on the old version first, and only
 * then is its session released.
 */

interface InFlight {
  /** requests in flight that started in each generation */
  counts: Map<number, number>;
  generation: number;
  waiters: Array<() => void>;
}

/** Counts HTTP requests by the model generation they started in. */
function trackRequests(app: FastifyInstance): InFlight {
  const t: InFlight = { counts: new Map(), generation: 0, waiters: [] };
  app.server.on('request', (_req, res) => {
    const g = t.generation;
    t.counts.set(g, (t.counts.get(g) ?? 0) + 1);
    res.once('close', () => {
      const left = (t.counts.get(g) ?? 1) - 1;
      if (left === 0) t.counts.delete(g);
      else t.counts.set(g, left);
      const waiters = t.waiters;
      t.waiters = [];
      for (const w of waiters) w();
    });
  });
  return t;
}

/** Resolves once no request that started before `generation` is in flight (or after `timeoutMs`). */
function settledBefore(t: InFlight, generation: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    const check = () => {
      if ([...t.counts.keys()].every((g) => g >= generation)) {
        clearTimeout(timer);
        resolve();
      } else t.waiters.push(check);
    };
    check();
  });
}

/** The route's schema minus the body: bodies are optional JSON, read by the handlers. */
function withoutBody<S extends object>(schema: S): S {
  const { body: _ignored, ...rest } = schema as S & { body?: unknown };
  return rest as S;
}

export async function repositoryRoutes(app: FastifyInstance, opts: { doc: OpenApiDoc; config: Config }): Promise<void> {
  const { config, doc } = opts;
  const adminKeys = config.adminApiKeys.map((k) => createHash('sha256').update(k, 'utf8').digest());
  const inflight = trackRequests(app);
  let queue: Promise<unknown> = Promise.resolve();
  /** one control operation at a time */
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };

  const admin = async (req: FastifyRequest) => {
    if (!config.modelControl) throw new UserError('model control is off; the operator enables it with S2S_MODEL_CONTROL=true', 403);
    const key = presentedKey(req);
    if (key === undefined) throw new UserError('model control needs an admin API key: send Authorization: Bearer <key> or X-API-Key', 401);
    if (matchKey(adminKeys, key) < 0) {
      app.metrics.reject('unauthorized');
      throw new UserError('this API key has no admin scope (S2S_ADMIN_API_KEYS)', 403);
    }
  };
  // The admin check replaces the ordinary API-key check: admin keys need not be service keys.
  // Model control queues no images, so a full inference queue must not refuse it (admission: false).
  const control = { config: { public: true, admission: false }, onRequest: admin };

  /** An optional JSON body (Triton sends parameters we do not use); must be an object when present. */
  const body = (req: FastifyRequest): Record<string, unknown> => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (raw.toString('utf8').trim() === '') return {};
    const v = parseInferJson(raw, { maxDepth: 8, maxArrayLength: 1024, maxObjectKeys: 256, maxStringLength: 65536 });
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UserError('the body, when sent, must be a JSON object');
    return v as Record<string, unknown>;
  };

  const retire = async (old: ServedModel, swappedAt: number) => {
    await settledBefore(inflight, swappedAt, config.requestTimeoutMs + 5000);
    try {
      await old.close();
      app.log.info({ model: old.name, version: old.version }, 'retired model set released');
    } catch (e) {
      app.log.error({ err: e, model: old.name }, 'releasing a retired model set failed');
    }
  };

  const swapped = () => {
    inflight.generation++;
    return inflight.generation;
  };

  const { schema: indexSchema, ...indexRoute } = route(doc, 'repositoryIndex');
  app.route({
    ...indexRoute,
    schema: withoutBody(indexSchema),
    ...control,
    handler: async (req) => {
      const onlyReady = body(req).ready === true;
      const rows = discoverModelSets(config.modelsDir).map((name) => {
        const served = app.models.has(name) ? app.models.get(name) : undefined;
        if (served) return { name, version: served.version, state: 'READY' };
        let version = '';
        try {
          version = readManifest(`${config.modelsDir}/${name}`).version;
        } catch {
          // an unreadable manifest is reported by load, with the reason
        }
        return { name, version, state: 'UNAVAILABLE', reason: 'unloaded' };
      });
      return onlyReady ? rows.filter((r) => r.state === 'READY') : rows;
    },
  });

  const { schema: loadSchema, ...loadRoute } = route(doc, 'repositoryModelLoad');
  app.route({
    ...loadRoute,
    schema: withoutBody(loadSchema),
    ...control,
    handler: async (req) => {
      const { name } = req.params as { name: string };
      body(req);
      return serially(async () => {
        if (!discoverModelSets(config.modelsDir).includes(name)) throw new UserError(`no model set '${name}' in the models folder (${config.modelsDir})`, 404);
        // Any failure here (missing file, wrong sha256, bad manifest) leaves the served set as it is.
        const model = await loadServedModel(config, app.metrics, app.log as never, name);
        // Its smoothed classifier (`<set>-certified`, /v1/certify) loads into the new set's workers first.
        let certifier;
        try {
          certifier = app.hasDecorator('certification') ? await app.certification.prepare(model) : undefined;
        } catch (e) {
          await model.close().catch(() => undefined);
          throw e;
        }
        const old = app.models.put(model);
        if (certifier) app.certification.swap(name, certifier);
        const generation = swapped();
        if (old) {
          if (old.version !== model.version) app.metrics.modelInfo.remove({ model: old.name, version: old.version, execution_provider: old.provider });
          void retire(old, generation);
        }
        req.log.info({ model: name, version: model.version, replaced: old?.version ?? null }, 'model set loaded by model control');
        return { name, version: model.version, state: 'READY' };
      });
    },
  });

  const { schema: unloadSchema, ...unloadRoute } = route(doc, 'repositoryModelUnload');
  app.route({
    ...unloadRoute,
    schema: withoutBody(unloadSchema),
    ...control,
    handler: async (req) => {
      const { name } = req.params as { name: string };
      body(req);
      return serially(async () => {
        const old = app.models.remove(name);
        if (app.hasDecorator('certification')) app.certification.swap(name, undefined);
        const generation = swapped();
        app.metrics.modelInfo.remove({ model: old.name, version: old.version, execution_provider: old.provider });
        void retire(old, generation);
        req.log.info({ model: name, version: old.version }, 'model set unloaded by model control');
        return { name, version: old.version, state: 'UNAVAILABLE' };
      });
    },
  });
}
