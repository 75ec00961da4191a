import { GraphBuilder } from '../../src/onnx/builder';
import { floatTensor } from '../../src/onnx/tensor';
import { canonicalClassifier, composeDefended } from '../../src/pipeline/compose';
import { assertEncoderFrozen, differingInitializers } from '../../src/pipeline/frozen';
import { createSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';

/** A classifier as foreign exporters write it: other input/output names, expects normalised input. */
function foreignClassifier() {
  const b = new GraphBuilder('foreign', { seed: 3 });
  const x = b.input('pixel_values', ['batch', 3, 8, 8]);
  const h = b.relu(b.conv(x, { out: 4, kernel: 3, stride: 2 }));
  b.output(b.linear(b.flatten(h), { out: 5 }), 'output0');
  return b.build();
}

function autoencoder(seed: number) {
  const b = new GraphBuilder('ae', { seed });
  const x = b.input('input', ['N', 3, 8, 8]);
  const h = b.relu(b.conv(x, { out: 4, kernel: 3, name: 'encoder.conv' }));
  b.output(b.sigmoid(b.conv(h, { out: 3, kernel: 3, name: 'decoder.conv' })), 'reconstruction');
  return b.build();
}

const values = (t: { data: unknown }) => Array.from(t.data as Float32Array);

describe('pipeline graph plumbing', () => {
  const rng = new Rng(11);
  const x = floatTensor([2, 3, 8, 8], Float32Array.from({ length: 384 }, () => rng.uniform()));
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];

  it('canonicalClassifier renames to input/logits and applies (x - mean)/std in front', async () => {
    const raw = foreignClassifier();
    const canon = canonicalClassifier(raw, { mean, std });
    expect(canon.inputs.map((v) => v.name)).toEqual(['input']);
    expect(canon.outputs.map((v) => v.name)).toEqual(['logits']);
    const normalised = floatTensor(x.dims, (x.data as Float32Array).map((v, i) => (v - mean[Math.floor(i / 64) % 3]) / std[Math.floor(i / 64) % 3]));
    const expected = (await (await createSession(raw)).run({ pixel_values: normalised })).output0;
    const got = (await (await createSession(canon)).run({ input: x })).logits;
    values(got).forEach((v, i) => expect(v).toBeCloseTo(values(expected)[i], 4));
  });

  it('leaves an already canonical classifier untouched', () => {
    const b = new GraphBuilder('c', { seed: 1 });
    b.output(b.linear(b.flatten(b.input('input', ['N', 1, 2, 2])), { out: 2 }), 'logits');
    const g = b.build();
    expect(canonicalClassifier(g)).toBe(g);
  });

  it('composeDefended equals s then f, and exposes the reconstruction', async () => {
    const s = autoencoder(5);
    const f = canonicalClassifier(foreignClassifier(), { mean, std });
    const defended = composeDefended(s, f);
    expect(defended.outputs.map((v) => v.name)).toEqual(['logits', 'reconstruction']);
    const r = (await (await createSession(s)).run({ input: x })).reconstruction;
    const expected = (await (await createSession(f)).run({ input: r })).logits;
    const got = await (await createSession(defended)).run({ input: x });
    values(got.logits).forEach((v, i) => expect(v).toBeCloseTo(values(expected)[i], 5));
    expect(values(got.reconstruction)).toEqual(values(r));
  });

  it('the frozen-encoder check finds a single changed bit', () => {
    const a = autoencoder(5);
    const same = autoencoder(5);
    expect(differingInitializers(a, same, 'encoder.')).toEqual([]);
    expect(() => assertEncoderFrozen(a, same)).not.toThrow();
    const w = same.initializers.get('encoder.conv.weight')!;
    const copy = Float32Array.from(w.data as Float32Array);
    new Uint32Array(copy.buffer)[7] ^= 1;
    same.initializers.set('encoder.conv.weight', { ...w, data: copy });
    expect(differingInitializers(a, same, 'encoder.')).toEqual(['encoder.conv.weight']);
    expect(() => assertEncoderFrozen(a, same)).toThrow(/encoder\.conv\.weight/);
    // The decoder may change freely.
    expect(differingInitializers(a, autoencoder(6), 'decoder.')).toContain('decoder.conv.weight');
  });
});
