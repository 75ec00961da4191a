import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { onnx } from 'onnx-proto';
import { UserError } from '../util/errors';
import { DataType, TypedArray, dataTypeName, typedArrayFromBytes } from './dtype';
import { Attr, Dim, Graph, Node, ValueInfo } from './graph';
import { TensorData, numel } from './tensor';

/** IR version written into every model we save (ONNX 1.13+; ORT 1.14+ reads it). */
const IR_VERSION = 8;
const PRODUCER = 's2snet-proxy';

type Numeric = number | { toNumber(): number } | string;
const num = (v: Numeric): number => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : v.toNumber());

// ---------- tensors ----------

export function tensorFromProto(t: onnx.ITensorProto): TensorData {
  const dataType = (t.dataType ?? DataType.FLOAT) as DataType;
  const dims = (t.dims ?? []).map((d) => num(d as Numeric));
  const n = numel(dims);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new UserError(`tensor '${t.name}' keeps its data in an external file; save the model with all data inside the .onnx file`);
  }
  let data: TypedArray;
  if (t.rawData && t.rawData.length > 0) {
    data = typedArrayFromBytes(dataType, t.rawData);
  } else {
    switch (dataType) {
      case DataType.FLOAT:
        data = Float32Array.from(t.floatData ?? []);
        break;
      case DataType.DOUBLE:
        data = Float64Array.from(t.doubleData ?? []);
        break;
      case DataType.INT64:
        data = BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(num(v as Numeric))));
        break;
      case DataType.UINT64:
        data = BigUint64Array.from((t.uint64Data ?? []).map((v) => BigInt(num(v as Numeric))));
        break;
      case DataType.INT32:
        data = Int32Array.from(t.int32Data ?? []);
        break;
      case DataType.UINT8:
      case DataType.BOOL:
        data = Uint8Array.from(t.int32Data ?? []);
        break;
      case DataType.INT8:
        data = Int8Array.from(t.int32Data ?? []);
        break;
      case DataType.INT16:
        data = Int16Array.from(t.int32Data ?? []);
        break;
      case DataType.UINT16:
      case DataType.FLOAT16:
        data = Uint16Array.from(t.int32Data ?? []);
        break;
      default:
        throw new UserError(`tensor '${t.name}' has unsupported data type ${dataTypeName(dataType)}`);
    }
  }
  if (data.length !== n) {
    throw new UserError(`tensor '${t.name}' holds ${data.length} values but its dims [${dims}] need ${n}`);
  }
  return { dataType, dims, data };
}

export function tensorToProto(name: string, t: TensorData): onnx.TensorProto {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return onnx.TensorProto.create({ name, dataType: t.dataType, dims: [...t.dims], rawData: bytes });
}

// ---------- value infos ----------

function valueInfoFromProto(v: onnx.IValueInfoProto): ValueInfo {
  const tt = v.type?.tensorType;
  const dataType = (tt?.elemType ?? DataType.FLOAT) as DataType;
  const shape: Dim[] | undefined = tt?.shape
    ? (tt.shape.dim ?? []).map((d, i) => {
        if ((d as { value?: string }).value === 'dimValue') return num(d.dimValue as Numeric);
        if (d.dimParam) return d.dimParam;
        return `${v.name}_d${i}`;
      })
    : undefined;
  return { name: v.name ?? '', dataType, shape };
}

function valueInfoToProto(v: ValueInfo): onnx.ValueInfoProto {
  const shape = v.shape
    ? onnx.TensorShapeProto.create({
        dim: v.shape.map((d) =>
          typeof d === 'number' ? onnx.TensorShapeProto.Dimension.create({ dimValue: d }) : onnx.TensorShapeProto.Dimension.create({ dimParam: d }),
        ),
      })
    : undefined;
  return onnx.ValueInfoProto.create({
    name: v.name,
    type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: v.dataType, shape }) }),
  });
}

// ---------- attributes ----------

const AT = onnx.AttributeProto.AttributeType;

function attrFromProto(a: onnx.IAttributeProto): Attr {
  switch (a.type) {
    case AT.INT:
      return { kind: 'int', value: num((a.i ?? 0) as Numeric) };
    case AT.FLOAT:
      return { kind: 'float', value: a.f ?? 0 };
    case AT.STRING:
      return { kind: 'string', value: Buffer.from(a.s ?? new Uint8Array()).toString('utf8') };
    case AT.INTS:
      return { kind: 'ints', value: (a.ints ?? []).map((v) => num(v as Numeric)) };
    case AT.FLOATS:
      return { kind: 'floats', value: [...(a.floats ?? [])] };
    case AT.STRINGS:
      return { kind: 'strings', value: (a.strings ?? []).map((s) => Buffer.from(s).toString('utf8')) };
    case AT.TENSOR:
      return { kind: 'tensor', value: tensorFromProto(a.t!) };
    case AT.GRAPH:
      return { kind: 'graph', value: a.g! };
    default:
      throw new UserError(`attribute '${a.name}' has a type (${a.type}) this tool does not read`);
  }
}

function attrToProto(name: string, a: Attr): onnx.AttributeProto {
  switch (a.kind) {
    case 'int':
      return onnx.AttributeProto.create({ name, type: AT.INT, i: a.value });
    case 'float':
      return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: a.value });
    case 'string':
      return onnx.AttributeProto.create({ name, type: AT.STRING, s: Buffer.from(a.value, 'utf8') });
    case 'ints':
      return onnx.AttributeProto.create({ name, type: AT.INTS, ints: a.value });
    case 'floats':
      return onnx.AttributeProto.create({ name, type: AT.FLOATS, floats: a.value });
    case 'strings':
      return onnx.AttributeProto.create({ name, type: AT.STRINGS, strings: a.value.map((s) => Buffer.from(s, 'utf8')) });
    case 'tensor':
      return onnx.AttributeProto.create({ name, type: AT.TENSOR, t: tensorToProto('', a.value) });
    case 'graph':
      return onnx.AttributeProto.create({ name, type: AT.GRAPH, g: a.value });
  }
}

// ---------- graphs and models ----------

export function graphFromModelProto(model: onnx.IModelProto, label = 'model'): Graph {
  const g = model.graph;
  if (!g) throw new UserError(`${label}: the ONNX model has no graph`);
  let opset = 0;
  const extraOpsets: Record<string, number> = {};
  for (const o of model.opsetImport ?? []) {
    const v = num((o.version ?? 0) as Numeric);
    if (!o.domain || o.domain === 'ai.onnx') opset = v;
    else extraOpsets[o.domain] = v;
  }
  const initializers = new Map<string, TensorData>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', tensorFromProto(t));
  const initNames = new Set(initializers.keys());
  const nodes: Node[] = (g.node ?? []).map((n, i) => ({
    name: n.name || `${n.opType}_${i}`,
    opType: n.opType ?? '',
    domain: n.domain || undefined,
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? '', attrFromProto(a)])),
  }));
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? '';
  return {
    name: g.name || label,
    opset: opset || 13,
    extraOpsets: Object.keys(extraOpsets).length ? extraOpsets : undefined,
    // Older exporters list initializers among the inputs; they are not runtime inputs.
    inputs: (g.input ?? []).map(valueInfoFromProto).filter((v) => !initNames.has(v.name)),
    outputs: (g.output ?? []).map(valueInfoFromProto),
    nodes,
    initializers,
    valueInfo: new Map((g.valueInfo ?? []).map((v) => { const vi = valueInfoFromProto(v); return [vi.name, vi]; })),
    metadata: Object.keys(metadata).length ? metadata : undefined,
    docString: model.docString || undefined,
  };
}

export function graphToModelProto(g: Graph): onnx.ModelProto {
  const opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: g.opset })];
  for (const [domain, version] of Object.entries(g.extraOpsets ?? {})) opsetImport.push(onnx.OperatorSetIdProto.create({ domain, version }));
  const graph = onnx.GraphProto.create({
    name: g.name,
    node: g.nodes.map((n) =>
      onnx.NodeProto.create({
        name: n.name,
        opType: n.opType,
        domain: n.domain ?? '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs).map(([k, a]) => attrToProto(k, a)),
      }),
    ),
    initializer: [...g.initializers].map(([name, t]) => tensorToProto(name, t)),
    input: g.inputs.map(valueInfoToProto),
    output: g.outputs.map(valueInfoToProto),
    valueInfo: [...g.valueInfo.values()].map(valueInfoToProto),
  });
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: PRODUCER,
    producerVersion: '0.1.0',
    opsetImport,
    graph,
    docString: g.docString ?? '',
    metadataProps: Object.entries(g.metadata ?? {}).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value })),
  });
}

export function encodeModel(g: Graph): Uint8Array {
  return onnx.ModelProto.encode(graphToModelProto(g)).finish();
}

export function decodeModel(bytes: Uint8Array, label = 'model'): Graph {
  let proto: onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new UserError(`${label} is not a valid ONNX model (${(e as Error).message})`);
  }
  return graphFromModelProto(proto, label);
}

export function loadModel(path: string): Graph {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `model file not found: ${path}` : `cannot read model file ${path}: ${(e as Error).message}`);
  }
  return decodeModel(bytes, path);
}

export function saveModel(g: Graph, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodeModel(g));
}
