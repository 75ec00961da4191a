import { AsyncLocalStorage } from 'node:async_hooks';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { loadConfig } from '../../../src/server/config';
import { createLogger, startServer } from '../../../src/server/start';

/**
 * TEST ONLY (request-context.test.ts): the service in this process, with
 * every AsyncLocalStorage entry counted, answers one V2 infer request and
 * one raw-image classify request sent to itself; prints the count, the
 * statuses and the request log lines as one JSON line. Configured by the
 * usual environment variables. (Jest cannot load the app in its own process:
 * @fastify/static is ESM.)
 */
async function run(): Promise<void> {
  let entered = 0;
  for (const m of ['run', 'enterWith'] as const) {
    const original = AsyncLocalStorage.prototype[m] as (...a: unknown[]) => unknown;
    (AsyncLocalStorage.prototype as unknown as Record<string, unknown>)[m] = function (this: unknown, ...a: unknown[]) {
      entered++;
      return original.apply(this, a);
    };
  }
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const server = await startServer(loadConfig(process.env, {}), { logger: createLogger('info', sink) });
  const model = server.models.get(server.models.defaultName);
  const { channels, height, width } = model.geometry;
  const post = async (path: string, id: string, contentType: string, body: Buffer | string) => {
    const r = await request(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': contentType, 'x-request-id': id }, body });
    await r.body.arrayBuffer();
    return r.statusCode;
  };
  const pixels = Buffer.alloc(channels * height * width, 128);
  const png = await (await import('sharp')).default(pixels, { raw: { width, height, channels: channels as 1 | 3 } }).png().toBuffer();
  const statuses = await Promise.all([
    post(`/v2/models/${model.name}/infer`, 'ctx-v2', 'application/json', JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, channels, height, width], data: new Array(2 * pixels.length).fill(0.5) }] })),
    post('/v1/classify', 'ctx-classify', 'image/png', png),
  ]);
  await server.shutdown('SIGINT');
  process.stdout.write(JSON.stringify({ entered, statuses, model: model.name, lines: lines.filter((l) => l.msg === 'request completed') }) + '\n');
}

run().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
