import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import multipart from '@fastify/multipart';
import { UserError } from '../util/errors';
import { IMAGE_MEDIA_TYPES } from '../serving/image';
import { JsonLimits, JsonShapeGuard, parseChecked } from './body/json';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** bounds for this route's JSON body (default: by path, see jsonLimitsFor) */
    jsonLimits?: JsonLimits;
  }
}

/**
 * The three ways a client sends images — a raw image body, multipart parts
 * named `image`, JSON with base64 strings — reduced to a list of byte
 * buffers. Limits (body size, number of images) are enforced here, before any
 * decoding, with messages that name the limit.
 */

export interface ImageSource {
  bytes: Buffer;
  /** multipart filename or "image N", for error messages and results */
  label: string;
  filename?: string;
}

export interface InputLimits {
  bodyLimit: number;
  maxParts: number;
}

export interface BodyParserOptions extends InputLimits {
  /** most values in one image of any served model (C·H·W), asked per request (model sets may change): bounds a V2 JSON tensor */
  maxImageValues(): number;
}

/**
 * The JSON bounds of a route: its own `jsonLimits`, else by path. /v1 bodies
 * are a flat object with a list of base64 strings (depth 2); other bodies
 * (the V2 protocol) carry at most maxParts images' values in one array.
 */
export function jsonLimitsFor(req: FastifyRequest, o: BodyParserOptions): JsonLimits {
  const own = req.routeOptions.config?.jsonLimits;
  if (own) return own;
  if (req.url.startsWith('/v1/')) return { maxDepth: 4, maxArrayLength: Math.max(64, o.maxParts), maxObjectKeys: 32, maxStringLength: o.bodyLimit };
  return protocolJsonLimits(o);
}

/**
 * Bounds for an Open Inference Protocol body: about maxParts images' values in one array. Twice
 * that, so a batch just over the limit reaches the shape check and its 413 naming the image limit.
 */
export function protocolJsonLimits(o: BodyParserOptions): JsonLimits {
  return { maxDepth: 16, maxArrayLength: Math.max(1024, 2 * o.maxParts * o.maxImageValues()), maxObjectKeys: 1024, maxStringLength: o.bodyLimit };
}

const tooLarge = (limit: number) => new UserError(`request body over ${limit} bytes`, 413);

/**
 * application/json, bounded while it streams in: the guard sees each chunk as
 * it arrives, so a body nested too deep (or too wide) is refused at its first
 * offending byte: nothing more is parsed, buffered or built.
 */
function boundedJsonParser(o: BodyParserOptions) {
  return (req: FastifyRequest, payload: NodeJS.ReadableStream, done: (err: Error | null, body?: unknown) => void): void => {
    const declared = Number(req.headers['content-length']);
    if (declared > o.bodyLimit) return done(tooLarge(o.bodyLimit));
    const guard = new JsonShapeGuard(jsonLimitsFor(req, o));
    const chunks: Buffer[] = [];
    let size = 0;
    let refused: Error | undefined;
    let finished = false;
    const finish = (err: Error | null, body?: unknown) => {
      if (finished) return;
      finished = true;
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      done(err, body);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > o.bodyLimit) return finish(tooLarge(o.bodyLimit));
      // Refused: the rest is read and dropped (no parsing, no buffering) so the client, still
      // sending, gets the 400 instead of a reset; the body limit bounds what that costs.
      if (refused) return;
      try {
        guard.feed(chunk);
      } catch (e) {
        refused = e as Error;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (refused) return finish(refused);
      try {
        finish(null, parseChecked(Buffer.concat(chunks, size)));
      } catch (e) {
        finish(e as Error);
      }
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', (e: Error) => finish(e));
  };
}

/** Raw image bodies as Buffers, bounded JSON, and multipart with per-part and part-count limits. */
export const bodyParsersPlugin = fp(async (app: FastifyInstance, opts: BodyParserOptions) => {
  app.addContentTypeParser(Object.keys(IMAGE_MEDIA_TYPES), { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body));
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', boundedJsonParser(opts));
  await app.register(multipart, {
    limits: { fileSize: opts.bodyLimit, files: opts.maxParts, fields: 8, fieldSize: 1024, parts: opts.maxParts + 8, headerPairs: 100 },
    throwFileSizeLimit: true,
  });
});

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function decodeBase64Image(s: string, label: string): Buffer {
  const body = s.replace(/^data:[^,]{0,100};base64,/, '').replace(/\s+/g, '');
  if (body.length === 0) throw new UserError(`${label} is empty`);
  if (!BASE64.test(body)) throw new UserError(`${label} is not valid base64`);
  return Buffer.from(body, 'base64');
}

async function fromMultipart(req: FastifyRequest, limits: InputLimits): Promise<ImageSource[]> {
  const out: ImageSource[] = [];
  let total = 0;
  try {
    for await (const part of req.parts()) {
      if (part.type !== 'file') throw new UserError(`unexpected form field '${part.fieldname}'; send images as parts named 'image' and options as query parameters`);
      if (part.fieldname !== 'image') throw new UserError(`unexpected part '${part.fieldname}'; send images as parts named 'image'`);
      const bytes = await part.toBuffer();
      total += bytes.length;
      if (total > limits.bodyLimit) throw new UserError(`request body over ${limits.bodyLimit} bytes`, 413);
      out.push({ bytes, label: `image ${out.length} (${part.filename || 'unnamed part'})`, filename: part.filename || undefined });
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') throw new UserError(`too many parts; at most ${limits.maxParts} images per request`, 413);
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new UserError(`a part is over ${limits.bodyLimit} bytes`, 413);
    if (e instanceof UserError || typeof (e as { statusCode?: unknown }).statusCode === 'number') throw e;
    // busboy's own errors (unterminated parts, bad headers) are about the body the client sent
    throw new UserError(`malformed multipart body (${(e as Error).message})`);
  }
  return out;
}

/** The images a classify request carries, in order. */
export async function imagesFromRequest(req: FastifyRequest, limits: InputLimits): Promise<ImageSource[]> {
  let images: ImageSource[];
  if (req.isMultipart()) {
    images = await fromMultipart(req, limits);
  } else if (Buffer.isBuffer(req.body)) {
    images = [{ bytes: req.body, label: 'image' }];
  } else if (req.body && typeof req.body === 'object' && Array.isArray((req.body as { images?: unknown }).images)) {
    const list = (req.body as { images: string[] }).images;
    if (list.length > limits.maxParts) throw new UserError(`${list.length} images; at most ${limits.maxParts} per request`, 413);
    images = list.map((s, i) => ({ bytes: decodeBase64Image(s, `image ${i}`), label: `image ${i}` }));
  } else {
    throw new UserError('empty request: send an image body (image/jpeg, image/png, image/webp, image/gif, image/tiff), multipart/form-data parts named image, or JSON {"images": [base64, …]}');
  }
  if (images.length === 0) throw new UserError('no images in the request');
  if (images.length > limits.maxParts) throw new UserError(`${images.length} images; at most ${limits.maxParts} per request`, 413);
  return images;
}
