import sharp from 'sharp';
import { TestServer, expectConforms, postImage, startTestServer, testImage } from '../harness';
import { InputTensor, encodeTensor, get, infer, post } from './protocol-client';

/**
 * The Open Inference Protocol over HTTP, spoken by protocol-client.ts (written
 * from the published documents): JSON, binary, mixed, versioned paths, output
 * selection, and an `{"error": …}` 4xx for every malformed request.
 */
describe('Open Inference Protocol over HTTP, by a client written from the spec', () => {
  let s: TestServer;
  let pixels: number[];
  let png: Buffer;
  const VERSION = '0.0.1-test';
  const uint8 = (data: number[] = pixels, n = 1): InputTensor => ({ name: 'input', datatype: 'UINT8', shape: [n, 1, 28, 28], data });
  const find = (outputs: Array<{ name: string }>, name: string) => outputs.find((o) => o.name === name) as any;

  beforeAll(async () => {
    s = await startTestServer({ S2S_MAX_PARTS: '4', S2S_BODY_LIMIT: '65536' });
    png = await testImage('png');
    pixels = Array.from(await sharp(png).extractChannel(0).raw().toBuffer());
  });
  afterAll(() => s.close());

  it('server metadata names the binary tensor extension; model metadata and readiness, plain and versioned', async () => {
    const server = await get(`${s.url}/v2`);
    expect(server.status).toBe(200);
    expect(server.json.extensions).toContain('binary_tensor_data');
    const meta = await get(`${s.url}/v2/models/tiny`);
    expect(meta.json).toEqual({
      name: 'tiny',
      versions: [VERSION],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [
        { name: 'probs', datatype: 'FP32', shape: [-1, 10] },
        { name: 'score', datatype: 'FP32', shape: [-1] },
        { name: 'adversarial', datatype: 'BOOL', shape: [-1] },
        { name: 'noise_sigma', datatype: 'FP32', shape: [-1] },
        { name: 'reconstruction', datatype: 'FP32', shape: [-1, 1, 28, 28] },
      ],
    });
    expect(await get(`${s.url}/v2/models/tiny/versions/${VERSION}`)).toEqual(meta);
    expect(await get(`${s.url}/v2/models/tiny/versions/${VERSION}/ready`)).toEqual({ status: 200, json: { name: 'tiny', ready: true } });
    for (const path of ['/v2/models/tiny/versions/9', '/v2/models/tiny/versions/9/ready', '/v2/models/nope', '/v2/models/nope/ready']) {
      const r = await get(`${s.url}${path}`);
      expect([path, r.status, typeof r.json.error]).toEqual([path, 404, 'string']);
    }
  });

  it('model control is off unless enabled: 403 naming the setting', async () => {
    const r = await post(`${s.url}/v2/repository/index`, Buffer.alloc(0), {});
    expect([r.status, r.json.error]).toEqual([403, expect.stringMatching(/S2S_MODEL_CONTROL=true/)]);
  });

  it('JSON without a Content-Type: every output but the reconstruction, typed, id echoed, same as /v1/classify', async () => {
    const r = await infer(s.url, 'tiny', [uint8()], { id: 'req-7' });
    expect(r.status).toBe(200);
    expectConforms('modelInfer', 200, r.json);
    expect(r.json).toMatchObject({ model_name: 'tiny', model_version: VERSION, id: 'req-7' });
    expect(r.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ['probs', 'FP32', [1, 10]],
      ['score', 'FP32', [1]],
      ['adversarial', 'BOOL', [1]],
      ['noise_sigma', 'FP32', [1]],
    ]);
    const v1 = (await postImage(`${s.url}/v1/classify?topK=10`, png)).json().results[0];
    const probs = find(r.outputs, 'probs').values as number[];
    for (const t of v1.top) expect(probs[t.index]).toBeCloseTo(t.probability, 6);
    expect(find(r.outputs, 'score').values[0]).toBeCloseTo(v1.detection.score, 6);
    expect(find(r.outputs, 'adversarial').values).toEqual([v1.detection.verdict === 'adversarial']);
    expect(find(r.outputs, 'noise_sigma').values).toEqual([v1.noise.sigma]);
  });

  it('binary in and binary out (binary_data_output) equal JSON; FP32, FP16 and UINT8 bytes agree; versioned path', async () => {
    const json = await infer(s.url, 'tiny', [uint8()], { outputs: [{ name: 'probs' }, { name: 'score' }, { name: 'adversarial' }] });
    const floats = pixels.map((p) => p / 255);
    const sends: InputTensor[] = [
      { name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], bytes: encodeTensor('UINT8', pixels) },
      { name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], bytes: encodeTensor('FP32', floats) },
    ];
    for (const input of sends) {
      const r = await infer(s.url, 'tiny', [input], {
        path: `/v2/models/tiny/versions/${VERSION}/infer`,
        parameters: { binary_data_output: true },
        outputs: [{ name: 'probs' }, { name: 'score' }, { name: 'adversarial' }],
        contentType: 'application/octet-stream',
      });
      expect([input.datatype, r.status]).toEqual([input.datatype, 200]);
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.outputs.every((o) => o.binary)).toBe(true);
      r.outputs.forEach((o, i) => {
        expect([o.name, o.shape]).toEqual([json.outputs[i].name, json.outputs[i].shape]);
        if (o.datatype === 'BOOL') expect(o.values).toEqual(json.outputs[i].values);
        else (o.values as number[]).forEach((v, j) => expect(v).toBeCloseTo(json.outputs[i].values[j] as number, 5));
      });
    }
    // FP16: pixel values k/1024 are exact in half precision, so FP16 and FP32 inputs give the same output
    const k1024 = pixels.map((p) => Math.round((p / 255) * 1024) / 1024);
    const [h, f] = await Promise.all(
      (['FP16', 'FP32'] as const).map((d) => infer(s.url, 'tiny', [{ name: 'input', datatype: d, shape: [1, 1, 28, 28], bytes: encodeTensor(d, k1024) }], { outputs: [{ name: 'probs' }] })),
    );
    expect(h.status).toBe(200);
    expect(h.outputs[0].values).toEqual(f.outputs[0].values);
  });

  it('mixed: binary input with JSON outputs; JSON input with one binary output beside a JSON one', async () => {
    const a = await infer(s.url, 'tiny', [{ name: 'input', datatype: 'UINT8', shape: [2, 1, 28, 28], bytes: encodeTensor('UINT8', [...pixels, ...pixels]) }], { contentType: 'application/json' });
    expect(a.status).toBe(200);
    expect(a.headers['inference-header-content-length']).toBeUndefined();
    expect(find(a.outputs, 'probs').shape).toEqual([2, 10]);
    const b = await infer(s.url, 'tiny', [uint8([...pixels, ...pixels], 2)], { outputs: [{ name: 'score' }, { name: 'probs', binary: true }] });
    expect(b.status).toBe(200);
    expect(b.outputs.map((o) => [o.name, o.binary])).toEqual([
      ['score', false],
      ['probs', true],
    ]);
    (find(b.outputs, 'probs').values as number[]).forEach((v, j) => expect(v).toBeCloseTo(find(a.outputs, 'probs').values[j], 5));
    // binary_data: false on an output overrides binary_data_output
    const c = await infer(s.url, 'tiny', [uint8()], { parameters: { binary_data_output: true }, outputs: [{ name: 'score', binary: false }, { name: 'noise_sigma' }] });
    expect(c.outputs.map((o) => [o.name, o.binary])).toEqual([
      ['score', false],
      ['noise_sigma', true],
    ]);
  });

  it('output selection: only the reconstruction, shaped [N, C, H, W]; parameters.noise raises the sigma', async () => {
    const r = await infer(s.url, 'tiny', [uint8([...pixels, ...pixels], 2)], { outputs: [{ name: 'reconstruction' }, { name: 'noise_sigma' }], parameters: { noise: 0.05 } });
    expect(r.status).toBe(200);
    expect(r.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ['reconstruction', 'FP32', [2, 1, 28, 28]],
      ['noise_sigma', 'FP32', [2]],
    ]);
    expect(r.outputs[0].values).toHaveLength(2 * 784);
    expect((r.outputs[1].values as number[]).map((v) => Math.fround(v))).toEqual([Math.fround(0.05), Math.fround(0.05)]);
  });

  const zeros = (n: number) => new Array(n).fill(0);
  const one = (over: Partial<InputTensor>): InputTensor => ({ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], data: zeros(784), ...over });
  it.each<[string, () => Promise<{ status: number; json: any }>, number, RegExp]>([
    ['wrong shape', () => infer(s.url, 'tiny', [one({ shape: [1, 3, 28, 28] })]), 400, /expected \[N, 1, 28, 28\]/],
    ['wrong rank', () => infer(s.url, 'tiny', [one({ shape: [784] })]), 400, /does not fit the model/],
    ['unsupported datatype', () => infer(s.url, 'tiny', [one({ datatype: 'INT64' })]), 400, /INT64 is not supported/],
    ['too few values', () => infer(s.url, 'tiny', [one({ data: [1, 2, 3] })]), 400, /needs 784 values, data has 3/],
    ['too many values', () => infer(s.url, 'tiny', [one({ data: zeros(785) })]), 400, /data has 785/],
    ['UINT8 out of range', () => infer(s.url, 'tiny', [one({ data: [256, ...zeros(783)] })]), 400, /outside 0–255/],
    ['FP32 out of range', () => infer(s.url, 'tiny', [one({ datatype: 'FP32', data: [1.5, ...zeros(783)] })]), 400, /outside \[0, 1\]/],
    ['non-numbers', () => infer(s.url, 'tiny', [one({ datatype: 'FP32', data: ['x', ...zeros(783)] })]), 400, /not a finite number/],
    ['unknown input name', () => infer(s.url, 'tiny', [one({ name: 'image' })]), 400, /unknown input 'image'/],
    ['two inputs', () => infer(s.url, 'tiny', [one({}), one({})]), 400, /inputs/],
    ['no inputs', () => infer(s.url, 'tiny', []), 400, /inputs/],
    ['unknown output', () => infer(s.url, 'tiny', [one({})], { outputs: [{ name: 'logits' }] }), 400, /outputs\/0\/name/],
    ['an output twice', () => infer(s.url, 'tiny', [one({})], { outputs: [{ name: 'probs' }, { name: 'probs' }] }), 400, /requested twice/],
    ['batch over the limit', () => infer(s.url, 'tiny', [one({ shape: [5, 1, 28, 28], data: zeros(5 * 784) })]), 413, /at most 4 images/],
    ['noise over the maximum', () => infer(s.url, 'tiny', [one({})], { parameters: { noise: 0.5 } }), 400, /exceeds the operator's maximum/],
    ['noise not a number', () => infer(s.url, 'tiny', [one({})], { parameters: { noise: 'lots' } }), 400, /'noise' must be a number/],
    ['binary bytes that do not fit the shape', () => infer(s.url, 'tiny', [one({ data: undefined, datatype: 'FP32', bytes: Buffer.alloc(784) })]), 400, /3136 bytes\), binary data has 784 bytes/],
    ['binary FP32 out of range', () => infer(s.url, 'tiny', [one({ data: undefined, datatype: 'FP32', bytes: encodeTensor('FP32', [2, ...zeros(783)]) })]), 400, /outside \[0, 1\]/],
    ['binary FP32 NaN', () => infer(s.url, 'tiny', [one({ data: undefined, datatype: 'FP32', bytes: encodeTensor('FP32', [NaN, ...zeros(783)]) })]), 400, /not a finite number/],
    ['unknown model', () => infer(s.url, 'other', [one({})]), 404, /unknown model 'other'/],
    ['unknown version', () => infer(s.url, 'tiny', [one({})], { path: '/v2/models/tiny/versions/2/infer' }), 404, /no version '2'/],
  ])('%s: 4xx with {"error": …}', async (_name, send, status, message) => {
    const r = await send();
    expect(r.status).toBe(status);
    expect(r.json.error).toMatch(message);
  });

  const raw = (body: Buffer | string, headers: Record<string, string> = {}) => post(`${s.url}/v2/models/tiny/infer`, Buffer.from(body), headers);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], parameters: { binary_data_size: 784 } }] }));
  it.each<[string, () => Promise<{ status: number; json: any }>, number, RegExp]>([
    ['empty body', () => raw(''), 400, /empty body/],
    ['a PNG with no Content-Type', () => raw(png), 400, /not a JSON inference request/],
    ['a PNG labelled image/png', () => raw(png, { 'content-type': 'image/png' }), 415, /images go to \/v1\/classify/],
    ['multipart', () => raw('--x\r\n\r\n--x--', { 'content-type': 'multipart/form-data; boundary=x' }), 415, /not an inference request/],
    ['truncated JSON', () => raw('{"inputs": [', { 'content-type': 'application/json' }), 400, /not a JSON inference request/],
    ['JSON that is not an object', () => raw('[1, 2]'), 400, /request must be object/],
    ['header length not a number', () => raw(Buffer.concat([header, Buffer.alloc(784)]), { 'inference-header-content-length': 'ten' }), 400, /whole number of bytes/],
    ['header length past the body', () => raw(header, { 'inference-header-content-length': String(header.length + 5) }), 400, /but the body has/],
    ['binary part shorter than binary_data_size', () => raw(Buffer.concat([header, Buffer.alloc(700)]), { 'inference-header-content-length': String(header.length) }), 400, /runs past the end/],
    ['binary part longer than binary_data_size', () => raw(Buffer.concat([header, Buffer.alloc(800)]), { 'inference-header-content-length': String(header.length) }), 400, /add up to 784 bytes, but 800/],
    ['bytes after JSON with no binary input', () => raw(Buffer.concat([Buffer.from(JSON.stringify({ inputs: [one({})] })), Buffer.alloc(4)]), { 'inference-header-content-length': String(JSON.stringify({ inputs: [one({})] }).length) }), 400, /no input has a binary_data_size/],
    ['data and binary_data_size both', () => raw(Buffer.concat([Buffer.from(JSON.stringify({ inputs: [{ ...one({}), parameters: { binary_data_size: 784 } }] })), Buffer.alloc(784)]), { 'inference-header-content-length': String(JSON.stringify({ inputs: [{ ...one({}), parameters: { binary_data_size: 784 } }] }).length) }), 400, /both 'data' and 'binary_data_size'/],
    ['body over the limit', () => raw(Buffer.alloc(70000, 32)), 413, /./],
  ])('raw body, %s: 4xx with {"error": …}', async (_name, send, status, message) => {
    const r = await send();
    expect(r.status).toBe(status);
    expectConforms('modelInfer', status, r.json);
    expect(r.json.error).toMatch(message);
  });
});
