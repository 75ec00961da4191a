import { DataType } from '../onnx/dtype';
import { Graph } from '../onnx/graph';
import { UserError } from '../util/errors';

/**
 * Which initializers of a model are parameters, and which of them train.
 *
 * `all` means the weights of parametric layers: float initializers read as
 * weight or bias by Conv, ConvTranspose, Gemm, MatMul, PRelu and the
 * normalisation layers, plus the bias operand of an Add that follows a MatMul
 * or Conv (how PyTorch exports Linear). Everything else that happens to be a
 * float initializer (clip bounds, Resize scales, normalisation constants) is
 * data, not a parameter. BatchNorm running statistics are never trainable;
 * training updates them from batch statistics instead.
 */
const WEIGHT_SLOTS: Record<string, number[]> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [0, 1, 2],
  MatMul: [0, 1],
  PRelu: [1],
  BatchNormalization: [1, 2],
  InstanceNormalization: [1, 2],
  LayerNormalization: [1, 2],
  GroupNormalization: [1, 2],
};

const BIAS_AFTER = new Set(['MatMul', 'Conv', 'Gemm', 'ConvTranspose']);

export function parameterCandidates(g: Graph): string[] {
  const floatInit = (n: string) => g.initializers.get(n)?.dataType === DataType.FLOAT;
  const producer = new Map<string, string>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n.opType);
  const found = new Set<string>();
  for (const n of g.nodes) {
    for (const slot of WEIGHT_SLOTS[n.opType] ?? []) {
      const name = n.inputs[slot];
      if (name && floatInit(name)) found.add(name);
    }
    if (n.opType === 'Add' && n.inputs.length === 2) {
      const [a, b] = n.inputs;
      if (floatInit(b) && BIAS_AFTER.has(producer.get(a) ?? '')) found.add(b);
      if (floatInit(a) && BIAS_AFTER.has(producer.get(b) ?? '')) found.add(a);
    }
  }
  // Initializer order, so the parameter list is stable across runs.
  return [...g.initializers.keys()].filter((n) => found.has(n));
}

/** BatchNorm running statistics (inputs 3 and 4) that are initializers. */
export function runningStatistics(g: Graph): Set<string> {
  const out = new Set<string>();
  for (const n of g.nodes) {
    if (n.opType !== 'BatchNormalization') continue;
    for (const i of [3, 4]) if (n.inputs[i] && g.initializers.has(n.inputs[i])) out.add(n.inputs[i]);
  }
  return out;
}

/** `*` matches any run of characters (dots and slashes included); everything else is literal. */
export function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Splits a CLI list: comma-separated, blanks ignored. */
export function parseNameList(v: string | string[] | undefined): string[] {
  const parts = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return parts.flatMap((p) => p.split(',')).map((s) => s.trim()).filter(Boolean);
}

export interface ParameterSelection {
  trainable: string[];
  /** parameter candidates left constant */
  frozen: string[];
}

/**
 * Resolves `requiresGrad` ('all' or names/patterns) minus `frozen`
 * (names/patterns). A pattern that matches nothing is an error: a typo must
 * not silently train, or freeze, the wrong layers.
 */
export function selectParameters(g: Graph, requiresGrad: 'all' | string[], frozen: string[] = []): ParameterSelection {
  const candidates = parameterCandidates(g);
  const stats = runningStatistics(g);
  const floats = [...g.initializers].filter(([n, t]) => t.dataType === DataType.FLOAT && !stats.has(n)).map(([n]) => n);
  let chosen: string[];
  if (requiresGrad === 'all') {
    chosen = candidates;
  } else {
    const picked = new Set<string>();
    for (const p of requiresGrad) {
      const re = globToRegExp(p);
      // Explicit names may pick any float initializer; patterns only parameters.
      const pool = p.includes('*') ? candidates : floats;
      const hits = pool.filter((n) => re.test(n));
      if (hits.length === 0) {
        if (stats.has(p)) throw new UserError(`'${p}' is a BatchNorm running statistic; it is updated from batch statistics, not by gradients`);
        throw new UserError(`--requires-grad '${p}' matches no parameter of '${g.name}' (parameters: ${preview(candidates)})`);
      }
      hits.forEach((h) => picked.add(h));
    }
    chosen = floats.filter((n) => picked.has(n));
  }
  const frozenSet = new Set<string>();
  for (const p of frozen) {
    const re = globToRegExp(p);
    const hits = floats.filter((n) => re.test(n));
    if (hits.length === 0) throw new UserError(`--frozen '${p}' matches no parameter of '${g.name}' (parameters: ${preview(candidates)})`);
    hits.forEach((h) => frozenSet.add(h));
  }
  const trainable = chosen.filter((n) => !frozenSet.has(n));
  if (trainable.length === 0) throw new UserError(`no trainable parameters left in '${g.name}' (selected ${chosen.length}, all frozen)`);
  const t = new Set(trainable);
  return { trainable, frozen: candidates.filter((n) => !t.has(n)) };
}

function preview(names: string[]): string {
  return names.length <= 12 ? names.join(', ') : `${names.slice(0, 12).join(', ')}, … (${names.length} in all)`;
}
