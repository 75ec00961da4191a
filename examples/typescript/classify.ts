/**
 * The typed TypeScript client (clients/typescript) against a running service:
 * classify every image in examples/images, then fetch one defended image.
 *   S2S_URL=http://localhost:8080 npx tsx examples/typescript/classify.ts
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S2SError, createS2SClient } from '../../clients/typescript/src';

async function main(): Promise<void> {
  const client = createS2SClient({ baseUrl: process.env.S2S_URL ?? 'http://localhost:8080', apiKey: process.env.S2S_API_KEY });
  const dir = join(__dirname, '..', 'images');
  const files = readdirSync(dir).filter((f) => f.endsWith('.png')).sort();

  const { models } = await client.models();
  console.log(`serving ${models.map((m) => `${m.name}@${m.version}`).join(', ')}`);

  for (const file of files) {
    const r = await client.classify(readFileSync(join(dir, file)), { topK: 1 });
    const top = r.top[0];
    console.log(`${file} → ${top.label} (${top.probability.toFixed(3)}), ${r.detection.verdict}, noise σ ${r.noise.sigma}`);
  }

  const batch = await client.classifyMany(files.slice(0, 3).map((f) => readFileSync(join(dir, f))), { topK: 1 });
  console.log(`batch of ${batch.results.length}: ${batch.results.map((r) => r.top[0].label).join(', ')}`);

  const seen = await client.reconstruct(readFileSync(join(dir, 'shirt.png')));
  const out = join(tmpdir(), 's2s-seen-ts.png');
  writeFileSync(out, seen);
  console.log(`defended image: ${out} (${seen.length} bytes)`);

  try {
    await client.classify(Buffer.from('GIF89a not really'));
  } catch (e) {
    if (!(e instanceof S2SError)) throw e;
    console.log(`a broken image is refused: ${e.status} ${e.code}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
