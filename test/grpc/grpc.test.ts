import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';
import { TestServer, call, postJson, startTestServer, testImage } from '../server/harness';
import { GrpcClients, connect, grpcAddress } from './client';

/**
 * Every RPC of inference.GRPCInferenceService and grpc.health.v1 against a
 * live server, with a grpc-js client built from the published proto: raw and
 * typed contents, FP16, output selection, auth failures, bad shapes, and the
 * same answers as HTTP V2 for the same pixels.
 */
describe('gRPC Open Inference Protocol on a live server', () => {
  const KEY = 'grpc-test-key-0123456789';
  const auth = { authorization: `Bearer ${KEY}` };
  let s: TestServer;
  let c: GrpcClients;
  let pixels: number[];

  beforeAll(async () => {
    s = await startTestServer({ S2S_GRPC_PORT: '0', S2S_API_KEYS: KEY, S2S_MAX_PARTS: '4' });
    c = connect(grpcAddress(s));
    pixels = Array.from(await sharp(await testImage('png')).extractChannel(0).raw().toBuffer());
  });
  afterAll(async () => {
    c?.close();
    await s?.close();
  });

  const input = (over: object = {}) => ({ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], ...over });
  const floats = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(i * 4));

  it('ServerLive and ServerReady (open, like the HTTP probes); grpc.health.v1 Check says SERVING', async () => {
    expect(await c.inference('ServerLive', {})).toEqual({ live: true });
    expect(await c.inference('ServerReady', {})).toEqual({ ready: true });
    expect(await c.health('Check', { service: '' })).toEqual({ status: 'SERVING' });
    expect(await c.health('Check', { service: 'inference.GRPCInferenceService' })).toEqual({ status: 'SERVING' });
  });

  it('ServerMetadata, ModelMetadata and ModelReady, plain and versioned', async () => {
    expect(await c.inference('ServerMetadata', {}, auth)).toEqual({ name: 's2snet-proxy', version: expect.any(String), extensions: ['binary_tensor_data'] });
    const meta = await c.inference('ModelMetadata', { name: 'tiny' }, auth);
    expect(meta).toMatchObject({ name: 'tiny', versions: ['0.0.1-test'], platform: 'onnxruntime_onnx', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }] });
    expect(JSON.parse(meta.properties.labels)).toHaveLength(10);
    expect(meta.outputs.map((o: { name: string; datatype: string }) => `${o.name}:${o.datatype}`)).toEqual(['probs:FP32', 'score:FP32', 'adversarial:BOOL', 'noise_sigma:FP32', 'reconstruction:FP32']);
    expect(await c.inference('ModelReady', { name: 'tiny', version: '0.0.1-test' }, auth)).toEqual({ ready: true });
    await expect(c.inference('ModelReady', { name: 'tiny', version: '7' }, auth)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringMatching(/no version '7'/) });
    await expect(c.inference('ModelMetadata', { name: 'nope' }, auth)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('ModelInfer with raw_input_contents answers raw_output_contents equal to HTTP V2 JSON; id and parameters come back', async () => {
    const http = (await postJson(`${s.url}/v2/models/tiny/infer`, { inputs: [{ ...input(), data: pixels }] }, auth)).json();
    const r = await c.inference('ModelInfer', { model_name: 'tiny', id: 'g-1', inputs: [input()], raw_input_contents: [Buffer.from(pixels)] }, auth);
    expect(r).toMatchObject({ model_name: 'tiny', model_version: '0.0.1-test', id: 'g-1' });
    expect(r.parameters.noise_sigma.parameter_choice).toBe('double_param');
    expect(r.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [o.name, o.datatype, o.shape])).toEqual(http.outputs.map((o: { name: string; datatype: string; shape: number[] }) => [o.name, o.datatype, o.shape]));
    expect(r.raw_output_contents).toHaveLength(4);
    floats(r.raw_output_contents[0]).forEach((v, i) => expect(v).toBeCloseTo(http.outputs[0].data[i], 6));
    expect(floats(r.raw_output_contents[1])[0]).toBeCloseTo(http.outputs[1].data[0], 6);
    expect(Array.from(r.raw_output_contents[2] as Buffer).map((b) => b === 1)).toEqual(http.outputs[2].data);
  });

  it('ModelInfer with typed contents (fp32_contents) answers typed contents; output selection; FP16 raw equals FP32 raw', async () => {
    const f = pixels.map((p) => Math.round((p / 255) * 1024) / 1024);
    const typed = await c.inference('ModelInfer', { model_name: 'tiny', inputs: [input({ datatype: 'FP32', contents: { fp32_contents: f } })], outputs: [{ name: 'probs' }, { name: 'adversarial' }] }, auth);
    expect(typed.raw_output_contents).toEqual([]);
    expect(typed.outputs.map((o: { name: string }) => o.name)).toEqual(['probs', 'adversarial']);
    expect(typed.outputs[0].contents.fp32_contents).toHaveLength(10);
    expect(typed.outputs[1].contents.bool_contents).toHaveLength(1);
    const f32 = Buffer.alloc(784 * 4);
    f.forEach((v, i) => f32.writeFloatLE(v, i * 4));
    const f16 = Buffer.alloc(784 * 2);
    f.forEach((v, i) => {
      const e = v === 0 ? 0 : Math.floor(Math.log2(v));
      f16.writeUInt16LE(v === 0 ? 0 : ((e + 15) << 10) | Math.round((v / 2 ** e - 1) * 1024), i * 2);
    });
    const [a, b] = await Promise.all(
      [
        [input({ datatype: 'FP32' }), f32],
        [input({ datatype: 'FP16' }), f16],
      ].map(([i, raw]) => c.inference('ModelInfer', { model_name: 'tiny', inputs: [i], outputs: [{ name: 'probs' }], raw_input_contents: [raw] }, auth)),
    );
    expect(floats(b.raw_output_contents[0])).toEqual(floats(a.raw_output_contents[0]));
    floats(a.raw_output_contents[0]).forEach((v, i) => expect(v).toBeCloseTo(typed.outputs[0].contents.fp32_contents[i], 6));
  });

  it('a batch of two and the reconstruction', async () => {
    const r = await c.inference('ModelInfer', { model_name: 'tiny', inputs: [input({ shape: [2, 1, 28, 28] })], outputs: [{ name: 'reconstruction' }], raw_input_contents: [Buffer.from([...pixels, ...pixels])] }, auth);
    expect(r.outputs[0].shape).toEqual([2, 1, 28, 28]);
    expect(r.raw_output_contents[0]).toHaveLength(2 * 784 * 4);
  });

  it.each<[string, object, Record<string, string>, grpc.status, RegExp]>([
    ['no API key', { model_name: 'tiny', inputs: [input()], raw_input_contents: [Buffer.alloc(784)] }, {}, grpc.status.UNAUTHENTICATED, /API key required/],
    ['a wrong API key', { model_name: 'tiny', inputs: [input()], raw_input_contents: [Buffer.alloc(784)] }, { 'x-api-key': 'not-the-key-0123456789' }, grpc.status.UNAUTHENTICATED, /invalid API key/],
    ['a bad shape', { model_name: 'tiny', inputs: [input({ shape: [1, 3, 28, 28] })], raw_input_contents: [Buffer.alloc(784 * 3)] }, auth, grpc.status.INVALID_ARGUMENT, /expected \[N, 1, 28, 28\]/],
    ['raw bytes that do not fit the shape', { model_name: 'tiny', inputs: [input({ datatype: 'FP32' })], raw_input_contents: [Buffer.alloc(784)] }, auth, grpc.status.INVALID_ARGUMENT, /binary data has 784 bytes/],
    ['typed contents in the wrong field', { model_name: 'tiny', inputs: [input({ contents: { fp32_contents: new Array(784).fill(0) } })] }, auth, grpc.status.INVALID_ARGUMENT, /UINT8 values go in contents.uint_contents/],
    ['no data at all', { model_name: 'tiny', inputs: [input()] }, auth, grpc.status.INVALID_ARGUMENT, /has no data/],
    ['raw and typed both', { model_name: 'tiny', inputs: [input({ contents: { uint_contents: [1] } })], raw_input_contents: [Buffer.alloc(784)] }, auth, grpc.status.INVALID_ARGUMENT, /both contents and raw_input_contents/],
    ['an unknown output', { model_name: 'tiny', inputs: [input()], outputs: [{ name: 'logits' }], raw_input_contents: [Buffer.alloc(784)] }, auth, grpc.status.INVALID_ARGUMENT, /unknown output 'logits'/],
    ['a batch over the limit', { model_name: 'tiny', inputs: [input({ shape: [5, 1, 28, 28] })], raw_input_contents: [Buffer.alloc(5 * 784)] }, auth, grpc.status.RESOURCE_EXHAUSTED, /at most 4 images/],
    ['an unknown model', { model_name: 'other', inputs: [input()], raw_input_contents: [Buffer.alloc(784)] }, auth, grpc.status.NOT_FOUND, /unknown model 'other'/],
    ['noise over the maximum', { model_name: 'tiny', parameters: { noise: { double_param: 0.9 } }, inputs: [input()], raw_input_contents: [Buffer.alloc(784)] }, auth, grpc.status.INVALID_ARGUMENT, /maximum/],
  ])('ModelInfer with %s: a clear gRPC error', async (_name, request, metadata, code, message) => {
    await expect(c.inference('ModelInfer', request, metadata)).rejects.toMatchObject({ code, details: expect.stringMatching(message) });
  });

  it('metadata calls need the key too; gRPC calls show up in the same metrics as HTTP', async () => {
    await expect(c.inference('ServerMetadata', {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const text = (await call(`${s.url}/metrics`)).body.toString();
    expect(text).toMatch(/s2s_http_request_duration_seconds_count\{route="\/inference\.GRPCInferenceService\/ModelInfer",method="GRPC",status_code="200"\} [1-9]/);
    expect(text).toMatch(/s2s_http_request_duration_seconds_count\{route="\/inference\.GRPCInferenceService\/ModelInfer",method="GRPC",status_code="401"\} 2/);
    expect(text).toMatch(/s2s_stage_duration_seconds_count\{stage="inference",model="tiny"\} [1-9]/);
  });
});

describe('gRPC: detection policy reject, rate limit, and draining', () => {
  let s: TestServer;
  let c: GrpcClients;
  beforeAll(async () => {
    // threshold 0 flags every image
    s = await startTestServer({ S2S_GRPC_PORT: '0', S2S_DETECTION_POLICY: 'reject', S2S_DRAIN_MS: '3000', S2S_RATE_LIMIT: '3/1m' }, { threshold: 0 });
    c = connect(grpcAddress(s));
  });
  afterAll(async () => {
    c?.close();
    await s?.close();
  });

  it('a flagged image is FAILED_PRECONDITION over gRPC and 422 over HTTP V2', async () => {
    const request = { model_name: 'tiny', inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28] }], raw_input_contents: [Buffer.alloc(784, 9)] };
    await expect(c.inference('ModelInfer', request)).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/flagged as adversarial/) });
    const http = await postJson(`${s.url}/v2/models/tiny/infer`, { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], data: new Array(784).fill(9) }] });
    expect(http.status).toBe(422);
  });

  it('S2S_RATE_LIMIT applies per client: past it RESOURCE_EXHAUSTED with retry-after; probes stay open', async () => {
    // the infer above was call 1 of 3
    await c.inference('ServerMetadata', {});
    await c.inference('ModelMetadata', { name: 'tiny' });
    const err = await c.inference('ServerMetadata', {}).catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/at most 3 calls per 60 s/) });
    expect(Number(err.metadata.get('retry-after')[0])).toBeGreaterThan(0);
    expect(await c.inference('ServerLive', {})).toEqual({ live: true });
    expect((await call(`${s.url}/metrics`)).body.toString()).toMatch(/s2s_rejections_total\{reason="rate_limited"\} 1\n/);
  });

  it('on SIGTERM, health turns NOT_SERVING and ServerReady false while calls are still answered', async () => {
    s.child.kill('SIGTERM');
    let status = 'SERVING';
    for (let i = 0; i < 40 && status === 'SERVING'; i++) {
      status = (await c.health('Check', { service: '' })).status;
      if (status === 'SERVING') await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe('NOT_SERVING');
    expect(await c.health('Check', { service: 'inference.GRPCInferenceService' })).toEqual({ status: 'NOT_SERVING' });
    expect(await c.inference('ServerReady', {})).toEqual({ ready: false });
    expect(await c.inference('ServerLive', {})).toEqual({ live: true });
    expect(await s.exited).toBe(0);
  });
});
