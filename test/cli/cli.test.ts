import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder';
import { saveModel } from '../../src/onnx/io';

const root = join(__dirname, '..', '..');
const cli = join(root, 'dist', 'cli', 'main.js');

/** The CLI is tested as users run it: the built binary (test/support/global-setup.js builds dist/ once) in a child process. */
describe('s2s CLI', () => {
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

  // One error style: one line on stderr, exit 2, before anything is loaded.
  it.each([
    [['serve', '--provider', 'tpu'], "s2s: --provider expects one of auto, cpu, cuda, got 'tpu'"],
    [['eval', '--models', '/no/such', '--out', '/tmp/x', '--provider', 'tpu'], "s2s: --provider expects one of auto, cpu, cuda, got 'tpu'"],
    [['train', 'default', '--provider', 'tpu'], "s2s: --provider expects one of auto, cpu, cuda, got 'tpu'"],
    [['gradients', '--models', '/no/such', '--out', '/tmp/x', '--provider', 'tpu'], "s2s: --provider expects one of auto, cpu, cuda, got 'tpu'"],
    [['transfer', '--models', '/no/such', '--out', '/tmp/x', '--provider', 'tpu'], "s2s: --provider expects one of auto, cpu, cuda, got 'tpu'"],
    // The training data is the full Fashion-MNIST here: the option must fail before it is read.
    [['train', 'classifier', '--out', '/tmp/x.onnx', '--epochs', 'two'], "s2s: --epochs expects an integer ≥ 1, got 'two'"],
    [['train', 'set', '--classifier', 'a', '--autoencoder', 'b', '--s2snet', 'c', '--out', 'd', '--fpr', 'x'], "s2s: --fpr expects a number ≥ 0, got 'x'"],
    [['train', 'classifier', '--out', '/tmp/x.onnx', '--bogus'], "s2s: unknown option '--bogus' (see --help)"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--adv-eps', '0.2:0.1'], "s2s: --adv-eps expects ε_max or ε_min:ε_max in [0, 1] with ε_min ≤ ε_max and ε_max > 0, got '0.2:0.1'"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--adv-fraction', '1.5'], "s2s: --adv-fraction must be in (0, 1], got '1.5'"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--recipe', 'denoise', '--adv-eps', '0.05'], "s2s: recipe 'denoise(pgd-5:0-0.05 vs defended, 0.5)': adversarial inputs need a classifier loss (ce or kl), not mse"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--recipe', 'adversarial-trades', '--trades-beta', 'big'], "s2s: --trades-beta expects a non-negative number, got 'big'"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--recipe', 'adversarial-fs', '--trades-beta', '2'], "s2s: --trades-beta is for a trades recipe; 'adversarial-fs' trains with ce"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--recipe', 'adversarial-trades', '--adv-ascent', 'mse'], "s2s: option '--adv-ascent <l>' argument 'mse' is invalid. Allowed choices are ce, kl. (see --help)"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--recipe', 'adversarial-f', '--adv-ascent', 'kl'], "s2s: recipe 'adversarial-f(fgsm-kl:0-0.1 vs f, 0.5)': KL ascent needs PGD (it starts from a random point; at the clean image its gradient is zero)"],
    [['train', 's2snet', '--classifier', 'a', '--autoencoder', 'b', '--out', 'x', '--average-decay', '1'], "s2s: --average-decay must be in [0, 1), got '1'"],
    [['train', 'classifier', '--out', '/tmp/x.onnx', '--average-decay', 'slow'], "s2s: --average-decay expects a non-negative number, got 'slow'"],
    [['info'], "s2s: missing required argument 'model' (see --help)"],
    [['nope'], "s2s: unknown command 'nope' (see --help)"],
  ])('%j is one line and exit 2', (args, line) => {
    const r = run(...args);
    expect(r.stderr).toBe(`${line}\n`);
    expect(r.status).toBe(2);
  });

  it('serve --provider cuda without a GPU refuses in one line naming what is missing', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [cli, 'serve', '--provider', 'cuda', '--port', '0'], { encoding: 'utf8', timeout: 20000 });
    const ms = Date.now() - t0;
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^s2s: provider cuda was requested but CUDA cannot be used here: missing .*CUDA provider library/);
    expect(r.stdout).toBe('');
    process.stdout.write(`serve --provider cuda refused in ${ms} ms\n`);
  });
});
