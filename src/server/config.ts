import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { UserError } from '../util/errors';
import type { NoiseKind } from '../models/manifest';
import type { ProviderChoice } from '../runtime/providers';
import type { DetectionPolicy } from '../serving/detection';
import { CERTIFY_N0, CertifyPolicy, OperatorCertifyPolicy } from '../certify/policy';

/**
 * Service configuration: one list of options, each settable by an
 * environment variable or a `s2s serve` flag (the flag wins). The `serve`
 * command builds its flags from this list and docs/configuration.md holds the
 * same table (a test keeps them in step).
 */

export interface Config {
  port: number;
  host: string;
  modelsDir: string;
  model: string;
  loadModels: string[];
  provider: ProviderChoice;
  threads: number;
  inferenceWorkers: number;
  inferenceNice: number;
  maxBatch: number;
  maxDelayMs: number;
  queueLimit: number;
  maxQueueWaitMs: number;
  requestTimeoutMs: number;
  noiseKind?: NoiseKind;
  noise?: number;
  noiseMax?: number;
  detectionPolicy: DetectionPolicy;
  apiKeys: string[];
  rateLimit?: { max: number; windowMs: number };
  maxEventLoopDelayMs: number;
  drainMs: number;
  maxConnections: number;
  listenBacklog: number;
  bodyLimit: number;
  maxPixels: number;
  maxPixelsGifTiff: number;
  decodeTimeoutS: number;
  maxParts: number;
  /** false, true (every hop: only when the proxy is the sole way in), or the proxies' addresses / CIDRs */
  trustProxy: boolean | string[];
  logLevel: string;
  /** one synchronous write per log line (false: asynchronous, coalesced while a write is in flight, flushed at exit) */
  logSync: boolean;
  /** POST /v1/certify and `<set>-certified` (docs/certification.md) */
  certify: OperatorCertifyPolicy;
  /** gRPC Open Inference Protocol port; undefined = no gRPC server */
  grpcPort?: number;
  /** probes and /metrics on a listener of their own; undefined = only on the traffic port */
  healthPort?: number;
  /** POST /v2/repository/… (load, unload, index) */
  modelControl: boolean;
  adminApiKeys: string[];
}

/** Repository root: two levels above this file both in src/ (tests) and in dist/ (built). */
export const PACKAGE_ROOT = resolve(__dirname, '..', '..');

type Raw = string | undefined;

export interface OptionDef {
  key: keyof Config | 'apiKeysFile' | `certify.${Exclude<keyof CertifyPolicy, 'n0'>}`;
  env: string;
  /** commander flag, without the value placeholder; absent for secrets (they would show in `ps`) */
  flag?: string;
  /** value placeholder in --help */
  arg?: string;
  default: string;
  description: string;
}

export const OPTIONS: OptionDef[] = [
  { key: 'port', env: 'PORT', flag: '--port', arg: 'n', default: '8080', description: 'TCP port to listen on' },
  { key: 'host', env: 'HOST', flag: '--host', arg: 'addr', default: '0.0.0.0', description: 'address to bind (`127.0.0.1` for loopback only)' },
  { key: 'modelsDir', env: 'S2S_MODELS_DIR', flag: '--models-dir', arg: 'dir', default: '<repo>/models', description: 'folder of model sets, one subfolder with a manifest.json each' },
  { key: 'model', env: 'S2S_MODEL', flag: '--model', arg: 'name', default: 'fashion-mnist', description: 'default model set: used when a request names none' },
  { key: 'loadModels', env: 'S2S_LOAD_MODELS', flag: '--load-models', arg: 'names', default: '(none)', description: 'further model sets to serve, comma-separated; `*` serves every set in the folder' },
  { key: 'provider', env: 'S2S_PROVIDER', flag: '--provider', arg: 'auto|cpu|cuda', default: 'auto', description: 'execution provider; `auto` uses CUDA when its libraries are installed and falls back to CPU (logged)' },
  { key: 'threads', env: 'S2S_THREADS', flag: '--threads', arg: 'n', default: '0', description: 'ONNX Runtime intra-op threads per inference worker; 0 = the cores the process may use (its container CPU limit, if any) divided among the workers' },
  { key: 'inferenceWorkers', env: 'S2S_INFERENCE_WORKERS', flag: '--inference-workers', arg: 'n', default: '1', description: 'inference worker threads per model set, each with its own ONNX Runtime session (on CUDA: one GPU session each); batches run on them in parallel, never on the event loop' },
  { key: 'inferenceNice', env: 'S2S_INFERENCE_NICE', flag: '--inference-nice', arg: 'n', default: '10', description: 'how many nice steps (0–19) below the process the inference worker threads and ONNX Runtime\'s threads inside them run (Linux): above 0 the event loop gets a core whenever it needs one, so accepting, refusing and answering stay on time while ORT uses every cycle left; 0 = the process\'s own priority' },
  { key: 'maxBatch', env: 'S2S_MAX_BATCH', flag: '--max-batch', arg: 'n', default: '32', description: 'most images per session run' },
  { key: 'maxDelayMs', env: 'S2S_MAX_DELAY_MS', flag: '--max-delay-ms', arg: 'ms', default: '2', description: 'longest an image waits for its batch to fill while other requests are still being decoded' },
  { key: 'queueLimit', env: 'S2S_QUEUE_LIMIT', flag: '--queue-limit', arg: 'n', default: '256', description: 'images queued per model set at most; beyond it requests get 503 with Retry-After at once' },
  { key: 'maxQueueWaitMs', env: 'S2S_MAX_QUEUE_WAIT_MS', flag: '--max-queue-wait-ms', arg: 'ms', default: '250', description: 'longest an admitted image is expected to wait for its batch (images queued ÷ the measured drain rate); beyond it requests get 503 with Retry-After even when the queue has room, so the latency bound holds when a flood slows the service; 0 = off' },
  { key: 'requestTimeoutMs', env: 'S2S_REQUEST_TIMEOUT_MS', flag: '--request-timeout-ms', arg: 'ms', default: '30000', description: 'per-request deadline; images still queued then get 503' },
  { key: 'noiseKind', env: 'S2S_NOISE_KIND', flag: '--noise-kind', arg: 'gaussian|uniform|sign', default: 'manifest `noise.kind`', description: 'noise distribution added before the S2SNet' },
  { key: 'noise', env: 'S2S_NOISE', flag: '--noise', arg: 'sigma', default: 'manifest `noise.sigma`', description: 'noise floor: applied to every image; clients may ask for more, never less' },
  { key: 'noiseMax', env: 'S2S_NOISE_MAX', flag: '--noise-max', arg: 'sigma', default: 'manifest `noise.maxSigma`', description: 'most noise a client may ask for (raised to the floor if below it)' },
  { key: 'detectionPolicy', env: 'S2S_DETECTION_POLICY', flag: '--detection-policy', arg: 'annotate|reject', default: 'annotate', description: '`annotate` reports the verdict; `reject` answers 422 when any image is flagged' },
  { key: 'apiKeys', env: 'S2S_API_KEYS', default: '(auth off)', description: 'comma-separated API keys; when set (or a keys file is), requests need `Authorization: Bearer <key>` or `X-API-Key`' },
  { key: 'apiKeysFile', env: 'S2S_API_KEYS_FILE', flag: '--api-keys-file', arg: 'path', default: '(none)', description: 'file with one API key per line (`#` comments); combined with `S2S_API_KEYS`' },
  { key: 'rateLimit', env: 'S2S_RATE_LIMIT', flag: '--rate-limit', arg: 'n/window', default: '(off)', description: 'requests per client (API key, else address) per window, e.g. `600/1m`, `20/1s`; over it: 429 with Retry-After' },
  { key: 'maxEventLoopDelayMs', env: 'S2S_MAX_EVENT_LOOP_DELAY_MS', flag: '--max-event-loop-delay-ms', arg: 'ms', default: '500', description: 'shed load (503) while the event loop lags more than this; 0 = off' },
  { key: 'drainMs', env: 'S2S_DRAIN_MS', flag: '--drain-ms', arg: 'ms', default: '5000', description: 'on SIGTERM, readiness turns 503 and the service keeps serving this long before it stops accepting connections, finishes in-flight requests and exits' },
  { key: 'maxConnections', env: 'S2S_MAX_CONNECTIONS', flag: '--max-connections', arg: 'n', default: '4096', description: 'open connections at most; a request on a connection beyond it gets 503 with Retry-After and `Connection: close` before its body is read; past 4× the cap new connections are reset' },
  { key: 'listenBacklog', env: 'S2S_LISTEN_BACKLOG', flag: '--listen-backlog', arg: 'n', default: '4096', description: 'connections the kernel holds before the service accepts them (capped by `net.core.somaxconn`)' },
  { key: 'bodyLimit', env: 'S2S_BODY_LIMIT', flag: '--body-limit', arg: 'bytes', default: '10485760', description: 'largest request body (and multipart part)' },
  { key: 'maxPixels', env: 'S2S_MAX_PIXELS', flag: '--max-pixels', arg: 'n', default: '16777216', description: 'largest image (width × height) decoded; bigger ones get 413 before decoding' },
  { key: 'maxPixelsGifTiff', env: 'S2S_MAX_PIXELS_GIF_TIFF', flag: '--max-pixels-gif-tiff', arg: 'n', default: '2097152', description: 'largest GIF or TIFF (width × height of the first frame) decoded: they decode 5–20× slower per pixel than JPEG or PNG; bigger ones get 413 before decoding' },
  { key: 'decodeTimeoutS', env: 'S2S_DECODE_TIMEOUT_S', flag: '--decode-timeout-s', arg: 's', default: '2', description: 'longest one image may take to decode; beyond it the decode is stopped and the request gets 413' },
  { key: 'maxParts', env: 'S2S_MAX_PARTS', flag: '--max-parts', arg: 'n', default: '32', description: 'most images per request (multipart parts, JSON images, V2 batch)' },
  { key: 'trustProxy', env: 'S2S_TRUST_PROXY', flag: '--trust-proxy', arg: 'addrs', default: 'false', description: 'whose X-Forwarded-For to believe for the client address (rate limits, logs): comma-separated proxy addresses or CIDRs (e.g. the ingress pods\' `10.0.0.0/8`), `true` for any hop, `false` for none' },
  { key: 'certify.n', env: 'S2S_CERTIFY_N', flag: '--certify-n', arg: 'n', default: '1000', description: '/v1/certify: noise draws per image when the request names none (plus 100 selection draws)' },
  { key: 'certify.maxN', env: 'S2S_CERTIFY_MAX_N', flag: '--certify-max-n', arg: 'n', default: '10000', description: '/v1/certify: most draws a request may ask for (each is a forward pass)' },
  { key: 'certify.alpha', env: 'S2S_CERTIFY_ALPHA', flag: '--certify-alpha', arg: 'a', default: '0.001', description: '/v1/certify: failure probability α of a certificate when the request names none' },
  { key: 'certify.maxAlpha', env: 'S2S_CERTIFY_MAX_ALPHA', flag: '--certify-max-alpha', arg: 'a', default: '0.01', description: '/v1/certify: the largest α (weakest guarantee) a request may ask for' },
  { key: 'certify.sigma', env: 'S2S_CERTIFY_SIGMA', flag: '--certify-sigma', arg: 'sigma', default: 'manifest `smoothing.sigma`, else 0.25', description: '/v1/certify: smoothing noise σ when the request names none' },
  { key: 'certify.batch', env: 'S2S_CERTIFY_BATCH', flag: '--certify-batch', arg: 'n', default: '1000', description: '/v1/certify: noisy copies per session run' },
  { key: 'grpcPort', env: 'S2S_GRPC_PORT', flag: '--grpc-port', arg: 'n', default: '(off)', description: 'serve the Open Inference Protocol over gRPC (and `grpc.health.v1`) on this port, same host; `0` picks a free port' },
  { key: 'healthPort', env: 'S2S_HEALTH_PORT', flag: '--health-port', arg: 'n', default: '(off)', description: 'also serve `/v2/health/live`, `/v2/health/ready` and `/metrics` on this port (same host) from a thread of its own: no backlog, connection cap, admission, auth, rate limit or event-loop turn shared with traffic, so probes answer under a flood; liveness and readiness say 503 when the main event loop has not turned for 5 s; it closes last at shutdown. Off: probes only on `PORT`, which serves them either way. `0` picks a free port (the image and the Helm chart set 8082)' },
  { key: 'modelControl', env: 'S2S_MODEL_CONTROL', flag: '--model-control', arg: 'bool', default: 'false', description: 'enable `POST /v2/repository/index` and `/v2/repository/models/{name}/load` and `unload` (needs `S2S_ADMIN_API_KEYS`)' },
  { key: 'adminApiKeys', env: 'S2S_ADMIN_API_KEYS', default: '(none)', description: 'comma-separated API keys with the admin scope, the only keys model control accepts' },
  { key: 'logLevel', env: 'LOG_LEVEL', flag: '--log-level', arg: 'level', default: 'info', description: 'pino level: fatal, error, warn, info, debug, trace, silent' },
  { key: 'logSync', env: 'LOG_SYNC', flag: '--log-sync', arg: 'bool', default: 'false', description: 'write each log line to stdout before the event loop goes on. Off: lines are written off the event loop, those that arrive while a write is in flight go out together in the next one, and all are flushed at exit (a SIGKILL or an OOM kill can lose the last write\'s lines); on: one write(2) per request on the event loop, about a tenth of a request\'s main-thread CPU under load' },
];

/** Camel-case property commander gives a flag (`--max-batch` → `maxBatch`). */
export function flagProperty(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function int(name: string, v: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(v.trim())) throw new UserError(`${name} must be a whole number, got '${v}'`);
  const n = Number(v);
  if (n < min || n > max) throw new UserError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function num(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UserError(`${name} must be a number between ${min} and ${max}, got '${v}'`);
  return n;
}

function oneOf<T extends string>(name: string, v: string, values: readonly T[]): T {
  const x = v.trim().toLowerCase();
  if (!(values as readonly string[]).includes(x)) throw new UserError(`${name} must be one of ${values.join(', ')}, got '${v}'`);
  return x as T;
}

/** `false`/`true`, or a list of proxy addresses and CIDRs (IPv4 or IPv6), each checked. */
function trustedProxies(name: string, v: string): boolean | string[] {
  if (/^\s*(1|0|true|false|yes|no|on|off)?\s*$/i.test(v)) return bool(name, v);
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of list) {
    const [addr, bits, extra] = entry.split('/');
    const family = isIP(addr);
    const maxBits = family === 6 ? 128 : 32;
    if (!family || extra !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= maxBits))) {
      throw new UserError(`${name} must be true, false or comma-separated addresses/CIDRs, got '${entry}'`);
    }
  }
  return list;
}

function bool(name: string, v: string): boolean {
  const x = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(x)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(x)) return false;
  throw new UserError(`${name} must be true or false, got '${v}'`);
}

const WINDOWS: Record<string, number> = { ms: 1, s: 1000, sec: 1000, second: 1000, m: 60000, min: 60000, minute: 60000, h: 3600000, hour: 3600000 };

export function parseRateLimit(name: string, v: string): { max: number; windowMs: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d*)\s*([a-z]+)\s*$/.exec(v.toLowerCase());
  if (!m || !WINDOWS[m[3]]) throw new UserError(`${name} must look like 600/1m, 20/1s or 100/minute, got '${v}'`);
  const max = int(name, m[1], 1);
  const windowMs = (m[2] ? Number(m[2]) : 1) * WINDOWS[m[3]];
  if (windowMs <= 0) throw new UserError(`${name}: the window must be longer than 0`);
  return { max, windowMs };
}

/** API keys: comma-separated env value plus a file of one key per line. Never logged. */
function readApiKeys(inline: Raw, file: Raw, fileName: string): string[] {
  const keys = (inline ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UserError(`${fileName}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const line of text.split(/\r?\n/)) {
      const k = line.replace(/#.*/, '').trim();
      if (k) keys.push(k);
    }
    if (keys.length === 0) throw new UserError(`${fileName}: ${file} holds no keys; refusing to start with auth silently off`);
  }
  for (const k of keys) if (k.length < 16) throw new UserError('API keys must be at least 16 characters long');
  return [...new Set(keys)];
}

/**
 * Reads the configuration: flags (commander's camel-cased values) over
 * environment variables over defaults. Every bad value is a UserError naming
 * the variable or flag.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, flags: Record<string, unknown> = {}): Config {
  const get = (key: OptionDef['key']): { raw: Raw; name: string } => {
    const def = OPTIONS.find((o) => o.key === key)!;
    const fv = def.flag ? flags[flagProperty(def.flag)] : undefined;
    if (fv !== undefined && fv !== null) return { raw: String(fv), name: def.flag! };
    const ev = env[def.env];
    return { raw: ev === undefined || ev === '' ? undefined : ev, name: def.env };
  };
  const val = <T>(key: OptionDef['key'], parse: (name: string, v: string) => T, fallback: T): T => {
    const { raw, name } = get(key);
    return raw === undefined ? fallback : parse(name, raw);
  };
  const opt = <T>(key: OptionDef['key'], parse: (name: string, v: string) => T): T | undefined => {
    const { raw, name } = get(key);
    return raw === undefined ? undefined : parse(name, raw);
  };

  const keysInline = get('apiKeys');
  const keysFile = get('apiKeysFile');
  const modelControl = val('modelControl', bool, false);
  const adminApiKeys = readApiKeys(get('adminApiKeys').raw, undefined, 'S2S_ADMIN_API_KEYS');
  if (modelControl && adminApiKeys.length === 0) throw new UserError('S2S_MODEL_CONTROL needs S2S_ADMIN_API_KEYS: model control is never open to every caller');
  return {
    port: val('port', (n, v) => int(n, v, 0, 65535), 8080),
    host: val('host', (_, v) => v.trim(), '0.0.0.0'),
    modelsDir: resolve(val('modelsDir', (_, v) => v, resolve(PACKAGE_ROOT, 'models'))),
    model: val('model', (_, v) => v.trim(), 'fashion-mnist'),
    loadModels: val('loadModels', (_, v) => v.split(',').map((s) => s.trim()).filter(Boolean), [] as string[]),
    provider: val('provider', (n, v) => oneOf(n, v, ['auto', 'cpu', 'cuda'] as const), 'auto'),
    threads: val('threads', (n, v) => int(n, v, 0, 1024), 0),
    inferenceWorkers: val('inferenceWorkers', (n, v) => int(n, v, 1, 64), 1),
    inferenceNice: val('inferenceNice', (n, v) => int(n, v, 0, 19), 10),
    maxBatch: val('maxBatch', (n, v) => int(n, v, 1, 4096), 32),
    maxDelayMs: val('maxDelayMs', (n, v) => num(n, v, 0, 10000), 2),
    queueLimit: val('queueLimit', (n, v) => int(n, v, 1), 256),
    maxQueueWaitMs: val('maxQueueWaitMs', (n, v) => int(n, v, 0), 250),
    requestTimeoutMs: val('requestTimeoutMs', (n, v) => int(n, v, 1), 30000),
    noiseKind: opt('noiseKind', (n, v) => oneOf(n, v, ['gaussian', 'uniform', 'sign'] as const)),
    noise: opt('noise', (n, v) => num(n, v, 0, 1)),
    noiseMax: opt('noiseMax', (n, v) => num(n, v, 0, 1)),
    detectionPolicy: val('detectionPolicy', (n, v) => oneOf(n, v, ['annotate', 'reject'] as const), 'annotate'),
    apiKeys: readApiKeys(keysInline.raw, keysFile.raw, keysFile.name),
    rateLimit: opt('rateLimit', parseRateLimit),
    maxEventLoopDelayMs: val('maxEventLoopDelayMs', (n, v) => int(n, v, 0), 500),
    drainMs: val('drainMs', (n, v) => int(n, v, 0), 5000),
    maxConnections: val('maxConnections', (n, v) => int(n, v, 1), 4096),
    listenBacklog: val('listenBacklog', (n, v) => int(n, v, 1, 65535), 4096),
    bodyLimit: val('bodyLimit', (n, v) => int(n, v, 1024), 10485760),
    maxPixels: val('maxPixels', (n, v) => int(n, v, 1), 16777216),
    maxPixelsGifTiff: val('maxPixelsGifTiff', (n, v) => int(n, v, 1), 2097152),
    decodeTimeoutS: val('decodeTimeoutS', (n, v) => int(n, v, 1, 3600), 2),
    maxParts: val('maxParts', (n, v) => int(n, v, 1, 4096), 32),
    trustProxy: val('trustProxy', trustedProxies, false),
    certify: {
      n: val('certify.n', (n, v) => int(n, v, 1, 1e7), 1000),
      maxN: val('certify.maxN', (n, v) => int(n, v, 1, 1e7), 10000),
      n0: CERTIFY_N0,
      alpha: val('certify.alpha', (n, v) => num(n, v, 1e-12, 0.49), 0.001),
      maxAlpha: val('certify.maxAlpha', (n, v) => num(n, v, 1e-12, 0.49), 0.01),
      sigma: opt('certify.sigma', (n, v) => num(n, v, 1e-6, 1)),
      batch: val('certify.batch', (n, v) => int(n, v, 1, 1e6), 1000),
    },
    grpcPort: opt('grpcPort', (n, v) => int(n, v, 0, 65535)),
    healthPort: opt('healthPort', (n, v) => int(n, v, 0, 65535)),
    modelControl,
    adminApiKeys,
    logSync: val('logSync', bool, false),
    logLevel: val('logLevel', (n, v) => oneOf(n, v, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const), 'info'),
  };
}
