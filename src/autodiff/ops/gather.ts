import { attr, attrInt } from '../../onnx/graph';
import { Emitter } from '../emitter';
import { GradientRule } from '../rule';

/**
 * Gathers of floating-point data (on shapes they carry no gradient: their
 * outputs are integers). The gradient scatters back with reduction='add', so
 * repeated indices accumulate.
 */
export const gather: Record<string, GradientRule> = {
  GatherElements: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => {
      const [data, idx] = node.inputs;
      const axis = attrInt(node, 'axis', 0);
      e.requireOpset(16, 'the GatherElements gradient (ScatterElements with reduction=add)');
      return [() => e.op('ScatterElements', [e.zerosLike(data), nonNegative(e, idx, data, axis), g!], { axis: attr.int(axis), reduction: attr.string('add') })];
    },
  },
  Gather: {
    differentiable: [0],
    grad: ({ node, dy: [g], e }) => {
      const [data, idx] = node.inputs;
      return [
        () => {
          e.requireOpset(16, 'the Gather gradient (ScatterND with reduction=add)');
          // Move the gathered axis to the front, ScatterND-add the rows, move it back.
          const r = e.rank(data);
          const a0 = attrInt(node, 'axis', 0);
          const a = a0 < 0 ? a0 + r : a0;
          const q = e.rank(idx);
          const front = [a, ...Array.from({ length: r }, (_, i) => i).filter((i) => i !== a)];
          const dataT = e.transpose(data, front);
          const gPerm = [...Array.from({ length: q }, (_, i) => a + i), ...Array.from({ length: a }, (_, i) => i), ...Array.from({ length: r - 1 - a }, (_, i) => a + q + i)];
          const gT = e.transpose(g!, gPerm);
          const ind = e.unsqueeze(nonNegative(e, idx, data, a), [q]);
          const scattered = e.op('ScatterND', [e.zerosLike(dataT), ind, gT], { reduction: attr.string('add') });
          const back = new Array<number>(r);
          front.forEach((p, i) => (back[p] = i));
          return e.transpose(scattered, back);
        },
      ];
    },
  },
};

/** Indices with negative entries (counting from the end) made non-negative, as scatters require. */
function nonNegative(e: Emitter, idx: string, data: string, axis: number): string {
  const known = e.intValue(idx);
  const dim = e.shape(data)?.[axis < 0 ? axis + e.rank(data) : axis];
  if (known && typeof dim === 'number') {
    if (known.every((i) => i >= 0)) return idx;
    return e.op('Reshape', [e.ints(known.map((i) => (i < 0 ? i + dim : i))), e.ints(e.staticShape(idx) ?? [known.length])]);
  }
  const n = e.op('Cast', [e.dimOf(data, axis)], { to: attr.int(e.dataType(idx)) });
  const zero = e.op('Cast', [e.ints([0])], { to: attr.int(e.dataType(idx)) });
  return e.op('Where', [e.op('Less', [idx, zero]), e.add(idx, n), idx]);
}
