import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

/**
 * A typed client for the s2snet-proxy REST API. Request and response types
 * are generated from openapi.yaml (src/schema.d.ts, by openapi-typescript);
 * the calls go through openapi-fetch. `raw` is the generated client itself,
 * for any route the helpers below do not wrap (V2 included).
 */

export type ClassifyResponse = components['schemas']['ClassifyResponse'];
export type ImageResult = components['schemas']['ImageResult'];
export type ModelList = components['schemas']['ModelList'];
export type ErrorBody = components['schemas']['Error'];

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** sent as Authorization: Bearer <key> */
  apiKey?: string;
  fetch?: typeof fetch;
}

export interface ClassifyOptions {
  topK?: number;
  /** model set; the server's default when absent */
  model?: string;
  /** noise sigma, at least the operator's floor */
  noise?: number;
}

/** A 4xx/5xx from the service, with its message and stable code. */
export class S2SError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = 'S2SError';
  }
}

type ImageType = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/gif' | 'image/tiff';

/** The image's media type from its first bytes (what the service accepts). */
export function imageType(bytes: Uint8Array): ImageType {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes[0] === 0x89 && ascii(1, 4) === 'PNG') return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  if (ascii(0, 3) === 'GIF') return 'image/gif';
  if (ascii(0, 2) === 'II' || ascii(0, 2) === 'MM') return 'image/tiff';
  throw new TypeError('not a PNG, JPEG, WebP, GIF or TIFF image');
}

function fail(status: number, body: unknown): never {
  const e = (body ?? {}) as Partial<ErrorBody>;
  throw new S2SError(status, e.code ?? 'unknown', e.error ?? 'no error message', e.requestId);
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function createS2SClient(opts: ClientOptions) {
  const raw = createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/$/, ''),
    headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {},
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  const asBody = (bytes: Uint8Array) => ({ body: bytes as never, bodySerializer: (b: unknown) => b as Uint8Array as never, headers: { 'content-type': imageType(bytes) } });

  return {
    raw,

    /** One image (PNG, JPEG, WebP, GIF, TIFF bytes) through the defence. */
    async classify(image: Uint8Array, o: ClassifyOptions = {}): Promise<ImageResult> {
      const { data, error, response } = await raw.POST('/v1/classify', { params: { query: o }, ...asBody(image) });
      if (!data) fail(response.status, error);
      return data.results[0];
    },

    /** Several images in one request (JSON with base64), results in order. */
    async classifyMany(images: Uint8Array[], o: ClassifyOptions = {}): Promise<ClassifyResponse> {
      const { data, error, response } = await raw.POST('/v1/classify', { body: { images: images.map(toBase64), ...o } as never, headers: { 'content-type': 'application/json' } });
      if (!data) fail(response.status, error);
      return data;
    },

    /** The defended image (PNG bytes): what the classifier actually sees. */
    async reconstruct(image: Uint8Array, o: Omit<ClassifyOptions, 'topK'> = {}): Promise<Uint8Array> {
      const { data, error, response } = await raw.POST('/v1/reconstruct', { params: { query: o }, ...asBody(image), parseAs: 'arrayBuffer' });
      if (!data) fail(response.status, error);
      return new Uint8Array(data);
    },

    /** The model sets served, the default first. */
    async models(): Promise<ModelList> {
      const { data, error, response } = await raw.GET('/v1/models');
      if (!data) fail(response.status, error);
      return data;
    },
  };
}

export type S2SClient = ReturnType<typeof createS2SClient>;
