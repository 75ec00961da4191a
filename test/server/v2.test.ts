import sharp from 'sharp';
import { TestServer, call, expectConforms, postImage, postJson, startTestServer, testImage } from './harness';

describe('Open Inference Protocol (KServe V2) on a live server', () => {
  let s: TestServer;
  const infer = (body: unknown) => postJson(`${s.url}/v2/models/tiny/infer`, body);
  const uint8Input = (data: number[], n = 1) => ({ name: 'input', datatype: 'UINT8', shape: [n, 1, 28, 28], data });

  beforeAll(async () => {
    s = await startTestServer({ S2S_MAX_PARTS: '4' });
  });
  afterAll(() => s.close());

  it('GET /v2, health and model metadata', async () => {
    const meta = await call(`${s.url}/v2`);
    expect(meta.status).toBe(200);
    expectConforms('serverMetadata', 200, meta.json());
    expect(meta.json().name).toBe('s2snet-proxy');

    const live = await call(`${s.url}/v2/health/live`);
    expect([live.status, live.json()]).toEqual([200, { live: true }]);
    const ready = await call(`${s.url}/v2/health/ready`);
    expect([ready.status, ready.json()]).toEqual([200, { ready: true }]);

    const model = await call(`${s.url}/v2/models/tiny`);
    expect(model.status).toBe(200);
    expectConforms('modelMetadata', 200, model.json());
    expect(model.json().inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }]);
    expect(model.json().outputs.map((o: { name: string }) => o.name)).toEqual(['probs', 'score', 'reconstruction']);

    const mready = await call(`${s.url}/v2/models/tiny/ready`);
    expect([mready.status, mready.json()]).toEqual([200, { name: 'tiny', ready: true }]);
    expect((await call(`${s.url}/v2/models/nope/ready`)).status).toBe(404);
    expect((await call(`${s.url}/v2/models/nope`)).status).toBe(404);
  });

  it('UINT8 inference equals /v1/classify on the same pixels (same defended path)', async () => {
    const png = await testImage('png');
    const pixels = Array.from(await sharp(png).extractChannel(0).raw().toBuffer());
    const r = await infer({ id: 'abc', inputs: [uint8Input(pixels)] });
    expect(r.status).toBe(200);
    const body = r.json();
    expectConforms('modelInfer', 200, body);
    expect(body).toMatchObject({ model_name: 'tiny', model_version: '0.0.1-test', id: 'abc' });
    const probs = body.outputs.find((o: { name: string }) => o.name === 'probs');
    expect(probs.shape).toEqual([1, 10]);
    const v1 = (await postImage(`${s.url}/v1/classify?topK=10`, png)).json().results[0];
    for (const t of v1.top) expect(probs.data[t.index]).toBeCloseTo(t.probability, 6);
    const score = body.outputs.find((o: { name: string }) => o.name === 'score');
    expect(score.data[0]).toBeCloseTo(v1.detection.score, 6);
    expect(body.parameters.detection_verdicts).toBe('clean');
  });

  it('FP32 inference, a batch, nested data and an explicit output list', async () => {
    const one = Array.from({ length: 784 }, (_, i) => (i % 28) / 27);
    const nested = [0, 1].map(() => [Array.from({ length: 28 }, (_, y) => one.slice(y * 28, y * 28 + 28))]);
    const r = await infer({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 1, 28, 28], data: nested }], outputs: [{ name: 'probs' }, { name: 'reconstruction' }] });
    expect(r.status).toBe(200);
    const body = r.json();
    expectConforms('modelInfer', 200, body);
    expect(body.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape])).toEqual([
      ['probs', [2, 10]],
      ['reconstruction', [2, 1, 28, 28]],
    ]);
    expect(body.outputs[1].data).toHaveLength(2 * 784);
  });

  it.each([
    ['wrong shape', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 28, 28], data: [] }] }, 400, /expected \[N, 1, 28, 28\]/],
    ['wrong rank', { inputs: [{ name: 'input', datatype: 'FP32', shape: [784], data: [] }] }, 400, /does not fit the model/],
    ['unsupported datatype', { inputs: [{ name: 'input', datatype: 'INT64', shape: [1, 1, 28, 28], data: [] }] }, 400, /INT64 is not supported/],
    ['too few values', { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], data: [1, 2, 3] }] }, 400, /needs 784 values, data has 3/],
    ['too many values', { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], data: new Array(785).fill(0) }] }, 400, /data has 785/],
    ['UINT8 out of range', { inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, 28, 28], data: [256, ...new Array(783).fill(0)] }] }, 400, /outside 0–255/],
    ['FP32 out of range', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: [1.5, ...new Array(783).fill(0)] }] }, 400, /outside \[0, 1\]/],
    ['non-numbers', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: ['x', ...new Array(783).fill(0)] }] }, 400, /not a finite number/],
    ['unknown input name', { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 28, 28], data: [] }] }, 400, /inputs\/0\/name/],
    ['no inputs', { inputs: [] }, 400, /inputs/],
    ['batch over the limit', { inputs: [{ name: 'input', datatype: 'UINT8', shape: [5, 1, 28, 28], data: [] }] }, 413, /at most 4 images/],
    ['noise over the maximum', { parameters: { noise: 0.5 }, inputs: [uint8Input(new Array(784).fill(0))] }, 400, /exceeds the operator's maximum/],
  ])('%s: a JSON error', async (_name, body, status, message) => {
    const r = await infer(body);
    expect(r.status).toBe(status);
    expectConforms('modelInfer', status, r.json());
    expect(r.json().error).toMatch(message);
  });

  it('an unknown model is a 404', async () => {
    const r = await postJson(`${s.url}/v2/models/other/infer`, { inputs: [uint8Input(new Array(784).fill(0))] });
    expect(r.status).toBe(404);
    expectConforms('modelInfer', 404, r.json());
  });
});
