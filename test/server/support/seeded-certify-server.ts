import { seededNoise } from '../../../src/certify/noise-source';
import { buildApp } from '../../../src/server/app';
import { loadConfig } from '../../../src/server/config';
import { Lifecycle } from '../../../src/server/lifecycle';
import { Metrics } from '../../../src/server/metrics';
import { createLogger, loadModels } from '../../../src/server/start';

/**
 * TEST ONLY: the service as `s2s serve` builds it, except that /v1/certify
 * draws its noise from the seeded streams `s2s certify` uses for test row
 * CERTIFY_TEST_ROW with seed CERTIFY_TEST_SEED, so a test can compare the two
 * draw for draw. Production has no way to do this: the seeded mode is a
 * buildApp dependency that only this script passes. Configured by the usual
 * environment variables; prints {"msg":"ready","url":…} when listening.
 */
async function run(): Promise<void> {
  const seed = Number(process.env.CERTIFY_TEST_SEED);
  const row = Number(process.env.CERTIFY_TEST_ROW);
  const config = loadConfig(process.env, {});
  const logger = createLogger('warn');
  const metrics = new Metrics();
  const lifecycle = new Lifecycle(metrics);
  const models = await loadModels(config, metrics, logger);
  const app = await buildApp({ config, models, metrics, lifecycle, logger, testOnlyCertifyNoise: () => seededNoise(seed, row) });
  app.addHook('onClose', async () => {
    await Promise.all(models.all().map((m) => m.close()));
  });
  const url = await app.listen({ port: config.port, host: config.host });
  lifecycle.markReady();
  process.stdout.write(JSON.stringify({ msg: 'ready', url }) + '\n');
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

run().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
