import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageType } from '../../clients/typescript/src';

const ROOT = join(__dirname, '..', '..');

describe('clients/typescript', () => {
  it('src/schema.d.ts is what openapi-typescript generates from openapi.yaml now', () => {
    const out = join(mkdtempSync(join(tmpdir(), 's2s-schema-')), 'schema.d.ts');
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js'), 'openapi.yaml', '-o', out], { cwd: ROOT, encoding: 'utf8' });
    expect({ status: r.status, err: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, err: '' });
    const committed = readFileSync(join(ROOT, 'clients', 'typescript', 'src', 'schema.d.ts'), 'utf8');
    // regenerate with: npx openapi-typescript openapi.yaml -o clients/typescript/src/schema.d.ts
    expect(readFileSync(out, 'utf8') === committed).toBe(true);
  });

  it('sends each image with its own media type', () => {
    expect(imageType(readFileSync(join(ROOT, 'examples', 'images', 'shirt.png')))).toBe('image/png');
    expect(imageType(Buffer.from([0xff, 0xd8, 0xff]))).toBe('image/jpeg');
    expect(imageType(Buffer.from('GIF89a'))).toBe('image/gif');
    expect(() => imageType(Buffer.from('hello'))).toThrow(/not a PNG/);
  });
});
