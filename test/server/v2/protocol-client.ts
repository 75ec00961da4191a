import { request } from 'undici';

/**
 * A minimal Open Inference Protocol HTTP client written from the published
 * documents only (KServe's inference_rest.md and Triton's
 * extension_binary_data.md), not from the service's code: it builds requests
 * and reads responses the way any third-party client would, so the tests
 * check the service against the protocol rather than against itself.
 */

export type Datatype = 'BOOL' | 'UINT8' | 'FP16' | 'FP32' | 'INT64';

export interface InputTensor {
  name: string;
  datatype: Datatype | string;
  shape: number[];
  /** JSON data … */
  data?: unknown[];
  /** … or these bytes, sent with the binary tensor data extension */
  bytes?: Buffer;
}

export interface OutputRequest {
  name: string;
  binary?: boolean;
}

export interface DecodedOutput {
  name: string;
  datatype: string;
  shape: number[];
  /** values, from JSON data or decoded from binary bytes */
  values: number[] | boolean[];
  /** whether the output came back as binary data */
  binary: boolean;
}

export interface InferReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** the JSON object (response or {error}) */
  json: any;
  outputs: DecodedOutput[];
}

/** Little-endian row-major bytes of a tensor, per the binary data extension. */
export function encodeTensor(datatype: Datatype, values: number[]): Buffer {
  switch (datatype) {
    case 'UINT8':
    case 'BOOL':
      return Buffer.from(values);
    case 'FP32': {
      const b = Buffer.alloc(values.length * 4);
      values.forEach((v, i) => b.writeFloatLE(v, i * 4));
      return b;
    }
    case 'FP16': {
      // Exact for the multiples of 1/1024 in [0, 1] the tests send.
      const b = Buffer.alloc(values.length * 2);
      values.forEach((v, i) => {
        let h = 0;
        if (v !== 0) {
          const e = Math.floor(Math.log2(v));
          h = ((e + 15) << 10) | Math.round((v / 2 ** e - 1) * 1024);
        }
        b.writeUInt16LE(h, i * 2);
      });
      return b;
    }
    case 'INT64': {
      const b = Buffer.alloc(values.length * 8);
      values.forEach((v, i) => b.writeBigInt64LE(BigInt(v), i * 8));
      return b;
    }
  }
}

function decodeTensor(datatype: string, bytes: Buffer): number[] | boolean[] {
  if (datatype === 'FP32') return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
  if (datatype === 'BOOL') return Array.from(bytes, (b) => b === 1);
  throw new Error(`client: no decoder for ${datatype}`);
}

export interface InferOptions {
  /** path after the server URL, default /v2/models/{model}/infer */
  path?: string;
  id?: string;
  parameters?: Record<string, string | number | boolean>;
  outputs?: OutputRequest[];
  /** Content-Type to send; undefined sends none (as Triton's Python client does) */
  contentType?: string;
  headers?: Record<string, string>;
}

export async function infer(baseUrl: string, model: string, inputs: InputTensor[], opts: InferOptions = {}): Promise<InferReply> {
  const binaries: Buffer[] = [];
  const request_: Record<string, unknown> = {
    ...(opts.id !== undefined ? { id: opts.id } : {}),
    ...(opts.parameters ? { parameters: opts.parameters } : {}),
    inputs: inputs.map((t) => {
      const base = { name: t.name, shape: t.shape, datatype: t.datatype };
      if (t.bytes === undefined) return { ...base, data: t.data };
      binaries.push(t.bytes);
      return { ...base, parameters: { binary_data_size: t.bytes.length } };
    }),
    ...(opts.outputs ? { outputs: opts.outputs.map((o) => ({ name: o.name, ...(o.binary !== undefined ? { parameters: { binary_data: o.binary } } : {}) })) } : {}),
  };
  const json = Buffer.from(JSON.stringify(request_));
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.contentType) headers['content-type'] = opts.contentType;
  if (binaries.length) headers['inference-header-content-length'] = String(json.length);
  return post(`${baseUrl}${opts.path ?? `/v2/models/${model}/infer`}`, Buffer.concat([json, ...binaries]), headers);
}

/** POSTs a body as it is and reads the reply per the protocol. */
export async function post(url: string, body: Buffer, headers: Record<string, string>): Promise<InferReply> {
  const r = await request(url, { method: 'POST', headers, body });
  const raw = Buffer.from(await r.body.arrayBuffer());
  const headerLength = r.headers['inference-header-content-length'];
  const jsonLength = headerLength === undefined ? raw.length : Number(headerLength);
  const json = JSON.parse(raw.subarray(0, jsonLength).toString('utf8'));
  let offset = jsonLength;
  const outputs: DecodedOutput[] = (json.outputs ?? []).map((o: any) => {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) return { name: o.name, datatype: o.datatype, shape: o.shape, values: o.data, binary: false };
    const bytes = raw.subarray(offset, offset + size);
    offset += size;
    return { name: o.name, datatype: o.datatype, shape: o.shape, values: decodeTensor(o.datatype, bytes), binary: true };
  });
  if (offset !== raw.length) throw new Error(`client: ${raw.length - offset} bytes left over after the outputs`);
  return { status: r.statusCode, headers: r.headers, json, outputs };
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const r = await request(url, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, json: text ? JSON.parse(text) : undefined };
}
