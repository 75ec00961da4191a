import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import sharp from 'sharp';
import { request } from 'undici';
import { loadOpenApi, routeSchema } from '../../src/server/openapi';
import { TinySet, TinySetOptions, writeTinySet } from '../models/tiny-set';

/**
 * A real service on 127.0.0.1 (ephemeral port) over a freshly built tiny
 * model set, run the way operators run it: `s2s serve` in its own process
 * (through tsx, from the sources), configured by environment variables. The
 * harness reads its JSON log lines (the "ready" line gives the URL) and
 * checks responses against openapi.yaml.
 */

const ROOT = join(__dirname, '..', '..');

export interface TestServer {
  url: string;
  child: ChildProcess;
  set: TinySet;
  logs: string[];
  /** resolves with the exit code once the process has ended */
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit code */
  close(): Promise<number | null>;
}

export function spawnServer(env: Record<string, string>, modelsDir: string, model: string): TestServer & { ready: Promise<void> } {
  // Shedding is off unless a test turns it on: a busy CI machine must not shed test traffic (limits.test.ts tests shedding itself).
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', S2S_MODELS_DIR: modelsDir, S2S_MODEL: model, S2S_DRAIN_MS: '0', S2S_THREADS: '1', S2S_MAX_EVENT_LOOP_DELAY_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const server = { url: '', child, set: undefined as unknown as TinySet, logs } as TestServer & { ready: Promise<void> };
  server.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  server.ready = new Promise((resolve, reject) => {
    let stderr = '';
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      logs.push(line);
      try {
        const o = JSON.parse(line);
        if (o.msg === 'ready') {
          server.url = o.url;
          resolve();
        }
      } catch {
        // not a log line
      }
    });
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before it was ready: ${stderr.trim()}`)));
  });
  server.close = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    return server.exited;
  };
  return server;
}

export async function startTestServer(env: Record<string, string> = {}, setOptions: TinySetOptions = {}): Promise<TestServer> {
  const set = writeTinySet(setOptions);
  const server = spawnServer(env, set.modelsDir, set.manifest.name);
  server.set = set;
  await server.ready;
  return server;
}

/** Log lines as objects. */
export function logObjects(s: TestServer): Array<Record<string, unknown>> {
  return s.logs.flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      return [];
    }
  });
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): any;
}

export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string | Uint8Array } = {},
): Promise<Response> {
  const r = await request(url, { method: (init.method ?? (init.body !== undefined ? 'POST' : 'GET')) as 'GET', headers: init.headers, body: init.body });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body, json: () => JSON.parse(body.toString('utf8')) };
}

export function postJson(url: string, value: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return call(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) });
}

export function postImage(url: string, bytes: Buffer, type = 'image/png', headers: Record<string, string> = {}): Promise<Response> {
  return call(url, { method: 'POST', headers: { 'content-type': type, ...headers }, body: bytes });
}

/** A multipart/form-data body with the given parts (all named `image` unless said otherwise). */
export function multipart(parts: Array<{ bytes: Buffer; type?: string; filename?: string; name?: string }>): { body: Buffer; contentType: string } {
  const boundary = `----s2s${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  parts.forEach((p, i) => {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${p.name ?? 'image'}"; filename="${p.filename ?? `img${i}.png`}"\r\nContent-Type: ${p.type ?? 'image/png'}\r\n\r\n`,
      ),
      p.bytes,
      Buffer.from('\r\n'),
    );
  });
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Deterministic grey test image (gradient plus a square), encoded in the given format. */
export async function testImage(format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' = 'png', size = 28, channels: 1 | 3 = 1, seed = 0): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * channels);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < channels; c++) {
        const inSquare = x > size / 4 && x < (3 * size) / 4 && y > size / 3 && y < (2 * size) / 3;
        raw[(y * size + x) * channels + c] = (inSquare ? 230 : ((x * 9 + y * 5 + seed * 37 + c * 50) % 180)) & 255;
      }
  const img = sharp(raw, { raw: { width: size, height: size, channels } });
  switch (format) {
    case 'png':
      return img.png().toBuffer();
    case 'jpeg':
      return img.jpeg({ quality: 95 }).toBuffer();
    case 'webp':
      return img.webp({ lossless: true }).toBuffer();
    case 'gif':
      return img.gif().toBuffer();
    case 'tiff':
      return img.tiff().toBuffer();
  }
}

const doc = loadOpenApi();
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const compiled = new Map<string, ReturnType<typeof ajv.compile>>();

/** Asserts that a JSON body is what openapi.yaml promises for this operation and status. */
export function expectConforms(operationId: string, status: number, body: unknown): void {
  const schemas = routeSchema(doc, operationId).response as Record<string, object> | undefined;
  const schema = schemas?.[String(status)];
  if (!schema) throw new Error(`openapi.yaml documents no JSON ${status} response for ${operationId}`);
  const key = `${operationId}:${status}`;
  const validate = compiled.get(key) ?? ajv.compile(schema);
  compiled.set(key, validate);
  if (!validate(body)) throw new Error(`${operationId} ${status} response does not match openapi.yaml: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
}
