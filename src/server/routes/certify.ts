import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram } from 'prom-client';
import { CertifyingModel, ServedCertificate } from '../../certify/certifying-model';
import { NoiseFactory, cryptoNoise } from '../../certify/noise-source';
import { CertifyRequest, resolveCertifySettings } from '../../certify/policy';
import { ABSTAIN, CertifySettings } from '../../certify/smoothing';
import { loadModelSet } from '../../models/loader';
import { decodeImage } from '../../serving/image';
import type { ServedModel } from '../../serving/served-model';
import { UserError } from '../../util/errors';
import type { Config } from '../config';
import { imagesFromRequest } from '../inputs';
import { OpenApiDoc, route } from '../openapi';
import { budgetLeft } from '../pipeline';

/**
 * POST /v1/certify: randomized smoothing's CERTIFY (Cohen et al. 2019) on
 * the served model set's smoothed classifier g — with the S2SNet as
 * denoiser, that is denoised smoothing (Salman et al. 2020). Per image: g's
 * class or "abstain", and the L2 radius within which g's answer cannot
 * change, with probability ≥ 1 − α over the service's noise draws.
 *
 * The noise comes from node:crypto's CSPRNG. `testOnlyNoise` replaces it
 * with seeded streams and exists only so a test can compare the service
 * with `s2s certify` draw for draw; nothing in the configuration sets it,
 * and answers made with it say so.
 */

/** What the certify routes share with the V2 `<set>-certified` models. */
export interface Certification {
  /** smoothed classifiers by model-set name */
  models: Map<string, CertifyingModel>;
  /**
   * Model control: the smoothed classifier for a set about to be served
   * (call before the swap; a failure leaves everything as it was), and the
   * swap itself once the set is in the registry (or gone, with undefined).
   */
  prepare(served: ServedModel): Promise<CertifyingModel>;
  swap(name: string, next: CertifyingModel | undefined): void;
  metrics: CertifyMetrics;
  /** noise of image i of a request: the CSPRNG, or seeded streams in tests */
  noiseFor: (imageIndex: number) => NoiseFactory;
  seeded: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    certification: Certification;
  }
}

export interface CertifyRouteOptions {
  doc: OpenApiDoc;
  config: Config;
  /** test only: seeded noise for image i of a request */
  testOnlyNoise?: (imageIndex: number) => NoiseFactory;
}

/** Metrics of certification: the radii certified and the abstentions (docs/metrics.md). */
export class CertifyMetrics {
  readonly radius: Histogram<'model'>;
  readonly abstentions: Counter<'model'>;
  constructor(app: FastifyInstance) {
    const registers = [app.metrics.registry];
    this.radius = new Histogram({
      name: 's2s_certified_radius',
      help: 'Certified L2 radius of each image answered by /v1/certify (0 when abstaining).',
      labelNames: ['model'] as const,
      buckets: [0, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3],
      registers,
    });
    this.abstentions = new Counter({ name: 's2s_certify_abstentions_total', help: 'Images for which certification abstained.', labelNames: ['model'] as const, registers });
    // Every series exists from the start, so dashboards and rate() see 0 rather than "no data".
    for (const name of app.models.names()) {
      this.radius.zero({ model: name });
      this.abstentions.inc({ model: name }, 0);
    }
  }
}

export interface CertifiedImage {
  certificate: ServedCertificate;
  decodeMs: number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** What every certification answer states about how it was made. */
export function certificationTerms(model: CertifyingModel, s: CertifySettings, seeded: boolean) {
  const trained = model.trainedSigma;
  return {
    base: model.base,
    ...(trained !== undefined ? { denoiserSigma: trained } : {}),
    norm: 'L2' as const,
    sigma: s.sigma,
    n: s.n,
    n0: s.n0,
    alpha: s.alpha,
    noise: seeded ? ('seeded (test only)' as const) : ('csprng' as const),
  };
}

/** Certifies decoded images concurrently (their chunks take turns in the batcher) and records the metrics. */
export async function certifyImages(
  app: FastifyInstance,
  metrics: CertifyMetrics,
  model: CertifyingModel,
  pixels: Float32Array[],
  s: CertifySettings,
  budgetMs: number,
  noiseFor: (i: number) => NoiseFactory,
): Promise<ServedCertificate[]> {
  const deadline = performance.now() + budgetMs;
  const certs = await model.certifyAll(pixels, s, noiseFor, deadline);
  for (const c of certs) {
    metrics.radius.observe({ model: model.name }, c.radius);
    if (c.prediction === ABSTAIN) metrics.abstentions.inc({ model: model.name });
    app.metrics.observeStage('queue_wait', model.name, c.queueMs / 1000);
    app.metrics.observeStage('inference', model.name, c.inferenceMs / 1000);
  }
  return certs;
}

/**
 * The smoothed classifier of one served set, from the same verified files,
 * its base classifier loaded into that set's inference workers (so it lives
 * and is released with the set's version).
 */
async function loadCertifier(app: FastifyInstance, config: Config, served: ServedModel): Promise<CertifyingModel> {
  const set = await loadModelSet(join(config.modelsDir, served.name));
  if (set.manifest.version !== served.version) throw new UserError(`model set '${served.name}' changed on disk while loading (version ${set.manifest.version}, serving ${served.version})`);
  return CertifyingModel.load(set, {
    policy: config.certify,
    provider: config.provider,
    intraOpThreads: config.threads,
    maxImages: 2 * config.maxParts,
    logger: app.log,
    // h runs in the served set's inference workers, never on the event loop
    host: served,
    observer: { rejected: (reason) => app.metrics.reject(reason) },
  });
}

async function loadCertifiers(app: FastifyInstance, config: Config): Promise<Map<string, CertifyingModel>> {
  const out = new Map<string, CertifyingModel>();
  for (const served of app.models.all()) out.set(served.name, await loadCertifier(app, config, served));
  return out;
}

/** Registered with fastify-plugin so `app.certifiers` is visible to the V2 routes too (`<set>-certified`). */
export const certifyRoutes = fp(async (app: FastifyInstance, opts: CertifyRouteOptions): Promise<void> => {
  const { config } = opts;
  const limits = { bodyLimit: config.bodyLimit, maxParts: config.maxParts };
  const p = config.certify;
  if (p.n > p.maxN) throw new UserError(`certification: the default n ${p.n} exceeds the maximum ${p.maxN} (S2S_CERTIFY_N, S2S_CERTIFY_MAX_N)`);
  if (p.alpha > p.maxAlpha) throw new UserError(`certification: the default alpha ${p.alpha} exceeds the maximum ${p.maxAlpha} (S2S_CERTIFY_ALPHA, S2S_CERTIFY_MAX_ALPHA)`);
  const certifiers = await loadCertifiers(app, config);
  app.addHook('onClose', async () => {
    await Promise.all([...certifiers.values()].map((c) => c.close()));
  });
  const metrics = new CertifyMetrics(app);
  const noiseFor = opts.testOnlyNoise ?? (() => cryptoNoise);
  app.decorate('certification', {
    models: certifiers,
    // The old one's session is in the retired set's workers: it goes when that set is released.
    prepare: (served: ServedModel) => loadCertifier(app, config, served),
    swap: (name: string, next: CertifyingModel | undefined) => {
      if (next) certifiers.set(name, next);
      else certifiers.delete(name);
    },
    metrics,
    noiseFor,
    seeded: opts.testOnlyNoise !== undefined,
  });

  app.route({
    ...route(opts.doc, 'certify'),
    handler: async (req, reply) => {
      const q = req.query as CertifyRequest & { model?: string };
      const json = !Buffer.isBuffer(req.body) && req.body && typeof req.body === 'object' && !req.isMultipart() ? (req.body as CertifyRequest & { model?: string }) : undefined;
      const served: ServedModel = app.models.get(json?.model ?? q.model);
      const model = certifiers.get(served.name)!;
      const s = resolveCertifySettings(model.policy, { n: json?.n ?? q.n, alpha: json?.alpha ?? q.alpha, sigma: json?.sigma ?? q.sigma });
      const sources = await imagesFromRequest(req, limits);
      const t0 = performance.now();
      const decodeMs: number[] = [];
      const pixels = await Promise.all(
        sources.map(async (src, i) => {
          const d0 = performance.now();
          const p = await decodeImage(src.bytes, served.geometry, config.maxPixels, src.label);
          decodeMs[i] = performance.now() - d0;
          return p;
        }),
      );
      app.metrics.observeStage('decode', served.name, (performance.now() - t0) / 1000);
      const certs = await certifyImages(app, metrics, model, pixels, s, budgetLeft(reply, config.requestTimeoutMs), noiseFor);
      return {
        model: { name: served.name, version: served.version },
        certification: certificationTerms(model, s, opts.testOnlyNoise !== undefined),
        results: certs.map((c, i) => ({
          index: i,
          ...(sources[i].filename ? { filename: sources[i].filename } : {}),
          class: c.prediction === ABSTAIN ? ABSTAIN : served.labels[c.prediction],
          classIndex: c.prediction === ABSTAIN ? null : c.prediction,
          radius: c.radius,
          pALower: c.pALower,
          countA: c.countA,
          timings: { decodeMs: round3(decodeMs[i]), queueMs: round3(c.queueMs), inferenceMs: round3(c.inferenceMs), runs: c.runs },
        })),
      };
    },
  });
});
