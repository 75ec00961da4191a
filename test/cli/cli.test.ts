import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/io';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli', 'main.js');

/** The CLI is tested as users run it: the built binary in a child process. */
describe('s2s CLI', () => {
  beforeAll(() => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  });

  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

  it('--help lists the subcommands', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: s2s/);
    expect(r.stdout).toMatch(/info \[options\] <model>/);
  });

  it('info describes a model', () => {
    const b = new GraphBuilder('m', { seed: 1 });
    b.output(b.linear(b.flatten(b.input('input', ['N', 1, 2, 2])), { out: 3 }), 'logits');
    const dir = mkdtempSync(join(tmpdir(), 's2s-cli-'));
    saveModel(b.build(), join(dir, 'm.onnx'));
    const r = run('info', join(dir, 'm.onnx'), '--json');
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.inputs).toEqual([{ name: 'input', type: 'FLOAT', shape: ['N', 1, 2, 2] }]);
    expect(info.outputs).toEqual([{ name: 'logits', type: 'FLOAT', shape: ['N', 3] }]);
    expect(info.parameters).toBe(15);
  });

  it('a missing model file is one line on stderr and exit code 2', () => {
    const r = run('info', '/no/such.onnx');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('s2s: model file not found: /no/such.onnx\n');
  });

  it('a file that is not ONNX is one line on stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 's2s-cli-'));
    writeFileSync(join(dir, 'bad.onnx'), 'definitely not protobuf \x00\xff\xfe');
    const r = run('info', join(dir, 'bad.onnx'));
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/is not a valid ONNX model/);
  });
});
