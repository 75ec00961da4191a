import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError } from '../util/errors';

/**
 * Which execution provider a session asks for.
 * - `cpu`: the CPU.
 * - `cuda`: CUDA or nothing: when the GPU cannot be used the process refuses to start, naming what is missing.
 * - `auto`: CUDA when it can be used, else the CPU, and the log says why.
 */
export type ProviderChoice = 'auto' | 'cpu' | 'cuda';
export type Provider = 'cpu' | 'cuda';

export function parseProvider(v: string | undefined): ProviderChoice {
  const p = (v ?? 'auto').toLowerCase();
  if (p === 'auto' || p === 'cpu' || p === 'cuda') return p;
  throw new UserError(`unknown execution provider '${v}' (expected auto, cpu or cuda)`);
}

/**
 * ONNX Runtime writes its own log lines (ANSI-coloured text, not JSON) straight
 * to stderr, where they would break the JSON log stream. Every failure it
 * logs also comes back to us as an exception, which we log as JSON with the
 * same content, so its logger is set to fatal-only. Must run before the first
 * session is created (ORT reads the level once).
 */
export function silenceNativeLog(): void {
  ort.env.logLevel = 'fatal';
}

/** The libraries ORT's CUDA provider (built for CUDA 12 and cuDNN 9) loads, besides the driver's libcuda. */
const CUDA_RUNTIME_LIBRARIES = ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10', 'libcudnn.so.9'];
const ORT_CUDA_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

function ortBinaryDir(): string {
  const root = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(root, 'bin', 'napi-v6', process.platform, process.arch);
}

let ldconfigCache: Set<string> | undefined;

/** Whether the dynamic loader can find a shared library: the ldconfig cache, then LD_LIBRARY_PATH. */
function loadable(lib: string): boolean {
  if (!ldconfigCache) {
    ldconfigCache = new Set();
    try {
      const out = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 });
      for (const m of out.matchAll(/^\s*(\S+)\s/gm)) ldconfigCache.add(m[1]);
    } catch {
      // No ldconfig (e.g. a distroless image): LD_LIBRARY_PATH is all there is to look at.
    }
  }
  if (ldconfigCache.has(lib)) return true;
  return (process.env.LD_LIBRARY_PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, lib)));
}

/**
 * What stops CUDA from working here, each named with where to look, or an
 * empty list. Checks files only (milliseconds), so `--provider cuda` can
 * refuse before any model is read.
 */
export function missingForCuda(deviceId = 0): string[] {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return [`onnxruntime-node has no CUDA provider for ${process.platform}/${process.arch} (linux/x64 only)`];
  }
  const missing: string[] = [];
  const bin = ortBinaryDir();
  const ortLibs = ORT_CUDA_LIBRARIES.filter((l) => !existsSync(join(bin, l)));
  if (ortLibs.length) missing.push(`ONNX Runtime's CUDA provider library (${ortLibs.join(', ')} in ${bin}; install it with \`npm run install:cuda\`)`);
  if (!loadable('libcuda.so.1')) missing.push('the NVIDIA driver (libcuda.so.1 not found by the loader)');
  const runtime = CUDA_RUNTIME_LIBRARIES.filter((l) => !loadable(l));
  if (runtime.length) missing.push(`CUDA 12 / cuDNN 9 libraries (${runtime.join(', ')})`);
  if (!existsSync(`/dev/nvidia${deviceId}`)) missing.push(`a GPU device (/dev/nvidia${deviceId} does not exist)`);
  return missing;
}

/** One line saying why `cuda` cannot be used, for the refusal and for `auto`'s fallback log. */
export function cudaUnavailableReason(missing: string[]): string {
  return `CUDA cannot be used here: missing ${missing.join('; ')}`;
}

/** `--provider cuda` / S2S_PROVIDER=cuda: throws the one-line refusal when CUDA cannot be used. */
export function requireCuda(deviceId = 0): void {
  const missing = missingForCuda(deviceId);
  if (missing.length) throw new UserError(`provider cuda was requested but ${cudaUnavailableReason(missing)}`);
}

/** Whether onnxruntime-node's CUDA provider library is on disk (installed with `npm run install:cuda`). */
export function cudaProviderInstalled(): boolean {
  try {
    return ORT_CUDA_LIBRARIES.every((l) => existsSync(join(ortBinaryDir(), l)));
  } catch {
    return false;
  }
}
