import sharp from 'sharp';
import { TestServer, call, expectConforms, multipart, postImage, postJson, startTestServer, testImage } from './harness';

describe('POST /v1/classify on a live server', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ S2S_MAX_PARTS: '4' }, { noise: { sigma: 0.02, maxSigma: 0.1 } });
  });
  afterAll(() => s.close());

  it.each(['png', 'jpeg', 'webp', 'gif', 'tiff'] as const)('classifies a raw %s body', async (format) => {
    const r = await postImage(`${s.url}/v1/classify`, await testImage(format), `image/${format}`);
    expect(r.status).toBe(200);
    const body = r.json();
    expectConforms('classify', 200, body);
    expect(body.model).toEqual({ name: 'tiny', version: '0.0.1-test' });
    expect(body.results).toHaveLength(1);
    const top = body.results[0].top;
    expect(top).toHaveLength(5);
    for (let i = 1; i < top.length; i++) expect(top[i - 1].probability).toBeGreaterThanOrEqual(top[i].probability);
    expect(r.headers['x-request-id']).toBeTruthy();
  });

  it('classifies a multipart batch in order, one session run for the batch', async () => {
    const imgs = await Promise.all([0, 1, 2].map((seed) => testImage('png', 28, 1, seed)));
    const mp = multipart(imgs.map((bytes, i) => ({ bytes, filename: `p${i}.png` })));
    const r = await call(`${s.url}/v1/classify?topK=3`, { method: 'POST', headers: { 'content-type': mp.contentType }, body: mp.body });
    expect(r.status).toBe(200);
    const body = r.json();
    expectConforms('classify', 200, body);
    expect(body.results.map((x: { index: number; filename: string }) => [x.index, x.filename])).toEqual([
      [0, 'p0.png'],
      [1, 'p1.png'],
      [2, 'p2.png'],
    ]);
    expect(body.results.every((x: { timings: { batchSize: number } }) => x.timings.batchSize === 3)).toBe(true);
    // each image gets its own answer: the same image alone gets the same top label
    const alone = (await postImage(`${s.url}/v1/classify?topK=3&noise=0`, imgs[2])).json();
    expect(alone.results[0].top[0].label).toBe(body.results[2].top[0].label);
  });

  it('classifies JSON base64 images, with a data: URL prefix accepted', async () => {
    const a = (await testImage('png')).toString('base64');
    const b = `data:image/jpeg;base64,${(await testImage('jpeg', 40, 3)).toString('base64')}`;
    const r = await postJson(`${s.url}/v1/classify`, { images: [a, b], topK: 2 });
    expect(r.status).toBe(200);
    const body = r.json();
    expectConforms('classify', 200, body);
    expect(body.results).toHaveLength(2);
    expect(body.results[1].top).toHaveLength(2);
  });

  it('topK is capped at the number of labels and must be ≥ 1', async () => {
    const png = await testImage();
    const all = (await postImage(`${s.url}/v1/classify?topK=1000`, png)).json();
    expect(all.results[0].top).toHaveLength(10);
    const sum = all.results[0].top.reduce((a: number, t: { probability: number }) => a + t.probability, 0);
    expect(sum).toBeCloseTo(1, 4);
    const bad = await postImage(`${s.url}/v1/classify?topK=0`, png);
    expect(bad.status).toBe(400);
    expectConforms('classify', 400, bad.json());
  });

  it('noise: the floor applies by default and to smaller requests, more is allowed up to the maximum, beyond it is a 400', async () => {
    const png = await testImage();
    const sigma = async (q: string) => (await postImage(`${s.url}/v1/classify${q}`, png)).json().results[0].noise;
    expect(await sigma('')).toEqual({ kind: 'gaussian', sigma: 0.02 });
    expect((await sigma('?noise=0')).sigma).toBe(0.02);
    expect((await sigma('?noise=0.01')).sigma).toBe(0.02);
    expect((await sigma('?noise=0.07')).sigma).toBe(0.07);
    expect((await sigma('?noise=0.1')).sigma).toBe(0.1);
    const over = await postImage(`${s.url}/v1/classify?noise=0.2`, png);
    expect(over.status).toBe(400);
    expect(over.json().error).toMatch(/maximum 0\.1/);
  });

  it('noise is random per request (CSPRNG): the same image gives different probabilities', async () => {
    const png = await testImage();
    const p = async () => (await postImage(`${s.url}/v1/classify?noise=0.1&topK=10`, png)).json().results[0].top;
    const a = await p();
    const b = await p();
    expect(a).not.toEqual(b);
  });

  it('an unknown model is a 404 naming what is served', async () => {
    const r = await postImage(`${s.url}/v1/classify?model=nope`, await testImage());
    expect(r.status).toBe(404);
    expect(r.json().error).toMatch(/unknown model 'nope'.*tiny/);
  });

  it('GET /v1/models describes the served set', async () => {
    const r = await call(`${s.url}/v1/models`);
    expect(r.status).toBe(200);
    const body = r.json();
    expectConforms('listModels', 200, body);
    expect(body.models[0]).toMatchObject({ name: 'tiny', default: true, input: { channels: 1, height: 28, width: 28 }, defence: ['noise', 's2snet'], executionProvider: 'cpu' });
  });
});

describe('POST /v1/reconstruct', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({}, { channels: 3, size: 16 });
  });
  afterAll(() => s.close());

  it('returns the defended image as a PNG in the model geometry', async () => {
    const r = await postImage(`${s.url}/v1/reconstruct`, await testImage('jpeg', 50, 3), 'image/jpeg');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['x-s2s-model']).toBe('tiny@0.0.1-test');
    const meta = await sharp(r.body).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([16, 16, 3]);
  });

  it('refuses a JSON body with 415', async () => {
    const r = await postJson(`${s.url}/v1/reconstruct`, { images: ['x'] });
    expect(r.status).toBe(415);
    expectConforms('reconstruct', 415, r.json());
  });
});

describe('detection policy', () => {
  it('annotate: a flagged image is answered with verdict adversarial', async () => {
    // threshold 0: any disagreement between the clean and the defended path is flagged
    const s = await startTestServer({ S2S_DETECTION_POLICY: 'annotate' }, { threshold: 0 });
    try {
      const r = await postImage(`${s.url}/v1/classify`, await testImage());
      expect(r.status).toBe(200);
      const d = r.json().results[0].detection;
      expect(d.threshold).toBe(0);
      expect(d.score).toBeGreaterThan(0);
      expect(d.verdict).toBe('adversarial');
    } finally {
      await s.close();
    }
  });

  it('reject: 422 naming the flagged images; clean images still pass', async () => {
    const strict = await startTestServer({ S2S_DETECTION_POLICY: 'reject' }, { threshold: 0 });
    const lenient = await startTestServer({ S2S_DETECTION_POLICY: 'reject' }, { threshold: 1e6 });
    try {
      const img = await testImage();
      const r = await postImage(`${strict.url}/v1/classify`, img);
      expect(r.status).toBe(422);
      const body = r.json();
      expectConforms('classify', 422, body);
      expect(body.code).toBe('detected');
      expect(body.detections).toEqual([{ index: 0, score: expect.any(Number), threshold: 0 }]);
      const ok = await postImage(`${lenient.url}/v1/classify`, img);
      expect(ok.status).toBe(200);
      expect(ok.json().results[0].detection.verdict).toBe('clean');
    } finally {
      await strict.close();
      await lenient.close();
    }
  });
});
