import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Which execution provider a session asks for. 'auto': CUDA when its libraries are installed, else CPU. */
export type ProviderChoice = 'auto' | 'cpu' | 'cuda';
export type Provider = 'cpu' | 'cuda';

export function parseProvider(v: string | undefined): ProviderChoice {
  const p = (v ?? 'auto').toLowerCase();
  if (p === 'auto' || p === 'cpu' || p === 'cuda') return p;
  throw new Error(`unknown execution provider '${v}' (expected auto, cpu or cuda)`);
}

let cudaLibrariesCache: boolean | undefined;

/**
 * Whether onnxruntime-node's CUDA provider library is on disk. It is absent
 * unless the package was installed with ONNXRUNTIME_NODE_INSTALL=cuda12, so
 * 'auto' does not even try CUDA on CPU-only installs.
 */
export function cudaProviderInstalled(): boolean {
  if (cudaLibrariesCache !== undefined) return cudaLibrariesCache;
  try {
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const bin = join(root, 'bin');
    const found = (dir: string): boolean =>
      readdirSync(dir, { withFileTypes: true }).some((e) =>
        e.isDirectory() ? found(join(dir, e.name)) : /onnxruntime_providers_cuda/.test(e.name),
      );
    cudaLibrariesCache = existsSync(bin) && found(bin);
  } catch {
    cudaLibrariesCache = false;
  }
  return cudaLibrariesCache;
}
