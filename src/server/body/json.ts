import { UserError } from '../../util/errors';

/**
 * JSON with its shape bounded before it is built. A 10 MB body of five
 * million `[` costs JSON.parse seconds of the event loop and hundreds of MB
 * of garbage before it fails; a body of millions of tiny array elements
 * costs about as much even when valid. The guard here walks the raw bytes
 * (chunk by chunk, as they arrive) and refuses the body at the first byte
 * that breaks a limit, so a hostile body costs about as much as its first
 * few bytes. Only bodies within the limits reach JSON.parse.
 *
 * The guard does not validate syntax (JSON.parse does, afterwards); it only
 * tracks what bounds the cost: nesting depth, elements per array, members
 * per object, bytes per string. JSON's structural characters are ASCII and
 * never occur inside a UTF-8 multi-byte sequence, so bytes are enough.
 */

export interface JsonLimits {
  /** arrays and objects nested at most this deep (the top-level value is depth 1) */
  maxDepth: number;
  /** elements in any one array */
  maxArrayLength: number;
  /** bytes in any one string (as sent, escapes included) */
  maxStringLength: number;
  /** members in any one object (default: maxArrayLength) */
  maxObjectKeys?: number;
}

/** A JSON body over one of the limits: 400, naming the limit. */
export class JsonLimitError extends UserError {
  constructor(
    message: string,
    readonly limit: keyof JsonLimits,
  ) {
    super(message, 400);
    this.name = 'JsonLimitError';
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** Feed it the body's bytes in order; it throws JsonLimitError as soon as a limit is broken. */
export class JsonShapeGuard {
  private depth = 0;
  /** per open container: commas seen so far (elements − 1) */
  private readonly commas: Int32Array;
  /** per open container: 1 for an object */
  private readonly isObject: Uint8Array;
  private inString = false;
  private escapePending = false;
  private stringBytes = 0;
  /** next backslash in the current chunk at or after the scan position (−1: none left); found once per chunk, not per string */
  private nextBackslash = -1;
  private readonly maxObjectKeys: number;

  constructor(private readonly limits: JsonLimits) {
    this.commas = new Int32Array(limits.maxDepth + 1);
    this.isObject = new Uint8Array(limits.maxDepth + 1);
    this.maxObjectKeys = limits.maxObjectKeys ?? limits.maxArrayLength;
  }

  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    this.nextBackslash = indexOf(chunk, BACKSLASH, 0);
    while (i < n) {
      if (this.inString) {
        i = this.skipString(chunk, i);
        continue;
      }
      const c = chunk[i++];
      if (c === QUOTE) {
        this.inString = true;
        this.stringBytes = 0;
      } else if (c === COMMA) {
        const d = this.depth;
        if (d > 0) {
          const elements = ++this.commas[d] + 1;
          if (this.isObject[d] === 1) {
            if (elements > this.maxObjectKeys) throw new JsonLimitError(`JSON object with more than ${this.maxObjectKeys} members (the limit for this route)`, 'maxObjectKeys');
          } else if (elements > this.limits.maxArrayLength) {
            throw new JsonLimitError(`JSON array with more than ${this.limits.maxArrayLength} elements (the limit for this route)`, 'maxArrayLength');
          }
        }
      } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
        if (this.depth >= this.limits.maxDepth) throw new JsonLimitError(`JSON nested deeper than ${this.limits.maxDepth} levels (the limit for this route)`, 'maxDepth');
        const d = ++this.depth;
        this.commas[d] = 0;
        this.isObject[d] = c === OPEN_OBJECT ? 1 : 0;
      } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
        if (this.depth > 0) this.depth--;
      }
    }
  }

  /** Inside a string from `i`: skips to just past its closing quote (or the chunk's end); returns the new index. */
  private skipString(chunk: Uint8Array, i: number): number {
    const n = chunk.length;
    if (this.escapePending) {
      this.escapePending = false;
      this.count(1);
      i++;
    }
    while (i < n) {
      // indexOf is native: a base64 image inside a string is skipped at memchr speed.
      const q = indexOf(chunk, QUOTE, i);
      if (this.nextBackslash >= 0 && this.nextBackslash < i) this.nextBackslash = indexOf(chunk, BACKSLASH, i);
      const b = this.nextBackslash;
      if (b >= 0 && (q < 0 || b < q)) {
        this.count(b + 2 - i);
        if (b + 1 >= n) {
          this.escapePending = true;
          return n;
        }
        i = b + 2;
        continue;
      }
      if (q < 0) {
        this.count(n - i);
        return n;
      }
      this.count(q - i);
      this.inString = false;
      return q + 1;
    }
    return n;
  }

  private count(bytes: number): void {
    this.stringBytes += bytes;
    if (this.stringBytes > this.limits.maxStringLength) throw new JsonLimitError(`JSON string longer than ${this.limits.maxStringLength} bytes (the limit for this route)`, 'maxStringLength');
  }
}

function indexOf(chunk: Uint8Array, byte: number, from: number): number {
  return Buffer.isBuffer(chunk) ? chunk.indexOf(byte, from) : chunk.indexOf(byte, from);
}

/** Keys that would reach an object's prototype if a caller merged the parsed value into another object. */
const POISON = /"(?:__proto__|constructor|prototype)"\s*:/;

/**
 * JSON.parse behind the guard: refuses (400, naming the limit) a body nested
 * too deep, with too many elements or members in one container, or too long
 * a string, before building anything; then parses; then refuses the keys
 * `__proto__`, `constructor` and `prototype`.
 */
export function parseBoundedJson(body: string | Buffer, limits: JsonLimits): unknown {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  new JsonShapeGuard(limits).feed(bytes);
  return parseChecked(bytes);
}

/** JSON.parse of bytes the guard has already passed. */
export function parseChecked(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new UserError('empty JSON body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UserError(`invalid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  if (POISON.test(text)) refusePoison(value);
  return value;
}

function refusePoison(v: unknown): void {
  if (Array.isArray(v)) {
    for (const x of v) refusePoison(x);
  } else if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') throw new UserError(`JSON key '${k}' is not allowed`);
      refusePoison((v as Record<string, unknown>)[k]);
    }
  }
}
