import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/onnx/builder';
import { floatTensor } from '../../src/onnx/tensor';
import { missingForCuda, parseProvider } from '../../src/runtime/providers';
import { createSession } from '../../src/runtime/session';
import { UserError } from '../../src/util/errors';

function tiny() {
  const b = new GraphBuilder('tiny', { seed: 1 });
  const x = b.input('input', ['N', 1, 4, 4]);
  b.output(b.linear(b.flatten(x), { out: 3 }), 'logits');
  return b.build();
}

describe('ModelSession', () => {
  it('rejects a wrong input shape with one line naming graph, input and both shapes', async () => {
    const s = await createSession(tiny(), { provider: 'cpu' });
    const err = await s.run({ input: floatTensor([2, 3, 4, 4]) }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe("graph 'tiny': input 'input' expects float32 [N, 1, 4, 4], got float32 [2, 3, 4, 4]");
    expect(err.message).not.toContain('\n');
  });

  it('rejects unknown and missing inputs by name', async () => {
    const s = await createSession(tiny(), { provider: 'cpu' });
    await expect(s.run({ image: floatTensor([1, 1, 4, 4]) })).rejects.toThrow("graph 'tiny' has no input 'image' (inputs: input)");
    await expect(s.run({})).rejects.toThrow("graph 'tiny': input 'input' is missing");
  });

  it('reports a missing model file as a UserError', async () => {
    await expect(createSession('/no/such/model.onnx')).rejects.toThrow('model file not found: /no/such/model.onnx');
  });

  it('cuda means CUDA or a one-line refusal naming what is missing', async () => {
    // This machine has no CUDA provider library, driver or device.
    const err = await createSession(tiny(), { provider: 'cuda' }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(/^provider cuda was requested but CUDA cannot be used here: missing /);
    expect(err.message).toContain("ONNX Runtime's CUDA provider library");
    expect(err.message).toContain('npm run install:cuda');
    expect(err.message).toContain('/dev/nvidia0');
    expect(missingForCuda(3).join(' ')).toContain('/dev/nvidia3');
  });

  it('auto falls back to the CPU and logs why', async () => {
    const lines: object[] = [];
    const logger = { info: (o: object) => lines.push(o), warn: (o: object) => lines.push(o) };
    const s = await createSession(tiny(), { provider: 'auto', logger });
    expect(s.provider).toBe('cpu');
    expect(lines[0]).toMatchObject({ graph: 'tiny', provider: 'cpu' });
    expect((lines[0] as { reason: string }).reason).toMatch(/^CUDA cannot be used here: missing /);
    const r = await s.run({ input: floatTensor([2, 1, 4, 4]) });
    expect(r.logits.dims).toEqual([2, 3]);
  });

  it('honours thread settings and auto picks CPU here', async () => {
    const s = await createSession(tiny(), { provider: 'auto', intraOpThreads: 1, interOpThreads: 1 });
    expect(s.provider).toBe('cpu');
    expect(s.inputShape('input')).toEqual(['N', 1, 4, 4]);
  });

  it('accepts the no-spinning setting used by the service', async () => {
    const s = await createSession(tiny(), { provider: 'cpu', allowSpinning: false, intraOpThreads: 2 });
    expect((await s.run({ input: floatTensor([1, 1, 4, 4]) })).logits.dims).toEqual([1, 3]);
  });

  it('parses provider names strictly', () => {
    expect(parseProvider(undefined)).toBe('auto');
    expect(parseProvider('CUDA')).toBe('cuda');
    expect(() => parseProvider('tpu')).toThrow(UserError);
    expect(() => parseProvider('tpu')).toThrow("unknown execution provider 'tpu'");
  });
});

describe("ONNX Runtime's native log", () => {
  it('stays out of stderr (it is not JSON): a failing CUDA provider reaches us as an exception only', () => {
    const root = join(__dirname, '..', '..');
    const model = join(root, 'models', 'fashion-mnist', 'classifier.onnx');
    // Loading our session module silences ORT; then ask ORT itself for CUDA, which fails on this machine.
    const script = `
      require('./src/runtime/session');
      const ort = require('onnxruntime-node');
      ort.InferenceSession.create(${JSON.stringify(model)}, { executionProviders: [{ name: 'cuda' }] })
        .then(() => console.log('cuda available'), (e) => console.log('refused: ' + e.message.split('\\n')[0]));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, encoding: 'utf8' });
    if (r.stdout.includes('cuda available')) return; // a GPU machine: nothing to refuse
    expect(r.stdout).toMatch(/^refused: /);
    expect(r.stderr).toBe('');
  });
});
