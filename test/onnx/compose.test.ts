import { GraphBuilder } from '../../src/onnx/builder';
import { composeGraphs } from '../../src/onnx/compose';
import { floatTensor } from '../../src/onnx/tensor';
import { createSession } from '../../src/runtime/session';
import { Rng } from '../../src/util/random';

function autoencoder() {
  const b = new GraphBuilder('ae', { seed: 1 });
  const x = b.input('input', ['N', 1, 12, 12]);
  const h = b.relu(b.conv(x, { out: 4, kernel: 3, name: 'encoder.conv' }));
  const p = b.maxPoolWithIndices(h, { kernel: 2 });
  const u = b.maxUnpool(p.output, p.indices, { kernel: 2, like: h });
  b.output(b.sigmoid(b.conv(u, { out: 1, kernel: 3, name: 'decoder.conv' })), 'reconstruction');
  return b.build();
}

function classifier() {
  // Same layer names as the autoencoder on purpose: the composer must rename them.
  const b = new GraphBuilder('clf', { seed: 2 });
  const x = b.input('input', ['N', 1, 12, 12]);
  const h = b.relu(b.conv(x, { out: 3, kernel: 3, stride: 2, name: 'encoder.conv' }));
  b.output(b.linear(b.flatten(h), { out: 5 }), 'logits');
  return b.build();
}

describe('composeGraphs', () => {
  const rng = new Rng(4);
  const input = floatTensor([3, 1, 12, 12], Float32Array.from({ length: 432 }, () => rng.uniform()));

  it('f ∘ s gives the same output as running s then f', async () => {
    const s = autoencoder();
    const f = classifier();
    const { graph } = composeGraphs(s, f, { connect: [['reconstruction', 'input']], name: 'defended' });
    expect(graph.inputs.map((i) => i.name)).toEqual(['input']);
    expect(graph.outputs.map((o) => o.name)).toEqual(['logits']);
    const names = [...graph.initializers.keys()];
    expect(new Set(names).size).toBe(names.length);

    const recon = (await (await createSession(s)).run({ input })).reconstruction;
    const sequential = (await (await createSession(f)).run({ input: recon })).logits;
    const composed = (await (await createSession(graph)).run({ input })).logits;
    expect(composed.dims).toEqual(sequential.dims);
    const a = composed.data as Float32Array;
    const b = sequential.data as Float32Array;
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
  });

  it('shares identical weights when the same classifier is composed twice', async () => {
    const f = classifier();
    const s = autoencoder();
    const defended = composeGraphs(s, f, { connect: [['reconstruction', 'input']] }).graph;
    // Second copy of f on the clean input, next to the defended path.
    const both = composeGraphs(defended, f, {
      connect: [],
      shareInputs: true,
      shareIdenticalInitializers: true,
      prefix: 'clean/',
      outputs: [
        { from: 'first', name: 'logits' },
        { from: 'second', name: 'logits' },
      ],
    });
    const fWeights = [...f.initializers.keys()].filter((k) => k.endsWith('.weight'));
    for (const k of fWeights) expect(both.graph.initializers.has(`clean/${k}`)).toBe(false);
    const outs = both.graph.outputs.map((o) => o.name);
    expect(outs).toHaveLength(2);
    const r = await (await createSession(both.graph)).run({ input });
    const clean = (await (await createSession(f)).run({ input })).logits.data as Float32Array;
    const got = r[outs[1]].data as Float32Array;
    for (let i = 0; i < clean.length; i++) expect(got[i]).toBeCloseTo(clean[i], 5);
  });

  it('keeps equal-valued initializers apart unless asked to share them', () => {
    const f = classifier();
    const twice = composeGraphs(f, f, { connect: [], shareInputs: true, prefix: 'b/' }).graph;
    expect(twice.initializers.size).toBe(2 * f.initializers.size);
  });

  it('names the missing value when a connection is wrong', () => {
    expect(() => composeGraphs(autoencoder(), classifier(), { connect: [['nope', 'input']] })).toThrow(/'nope' is not an output of 'ae'/);
    expect(() => composeGraphs(autoencoder(), classifier(), { connect: [['reconstruction', 'x']] })).toThrow(/'x' is not an input of 'clf'/);
  });
});
