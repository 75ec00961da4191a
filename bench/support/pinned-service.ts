import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadModelSet } from '../../src/models/loader';
import { Geometry, geometryOf } from '../../src/serving/image';
import { freePort } from './cli';
import { spawnPinned } from './cpus';
import { benchServiceEnv, untilReady } from './service';

const ROOT = join(__dirname, '..', '..');

/** `s2s serve` on loopback pinned to `cores`, one ORT thread per core and one inference worker, batches of up to 32. */
export async function startPinnedService(o: { cores: number[]; modelsDir: string; model: string; serviceEnv: Record<string, string> }): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawnPinned(o.cores, [join(ROOT, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: { ...benchServiceEnv({ port, modelsDir: o.modelsDir, model: o.model, threads: o.cores.length, workers: 1 }), S2S_MAX_BATCH: '32', ...o.serviceEnv },
    // one log line per request at info level, as in production; read and dropped so the pipe never blocks
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  await untilReady(url, child);
  return { url, child };
}

/** The set's input geometry and a fixed test image as PNG in the model's own colour type and in the other one. */
export async function benchPngs(modelsDir: string, model: string): Promise<{ geo: Geometry; png: Buffer; pngConvert: Buffer }> {
  const set = await loadModelSet(join(modelsDir, model));
  const geo = geometryOf(set.manifest.input);
  const raw = Buffer.alloc(geo.width * geo.height * geo.channels);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + (i >> 5) * 11) & 255;
  const encode = (space: 'b-w' | 'srgb') => sharp(raw, { raw: { width: geo.width, height: geo.height, channels: geo.channels } }).toColourspace(space).png().toBuffer();
  const grey = geo.channels === 1;
  return { geo, png: await encode(grey ? 'b-w' : 'srgb'), pngConvert: await encode(grey ? 'srgb' : 'b-w') };
}
