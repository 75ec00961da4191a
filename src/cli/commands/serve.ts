import { Command, Option } from 'commander';
import { OPTIONS, loadConfig } from '../../server/config';
import { requireCuda } from '../../runtime/providers';
import { startServer } from '../../server/start';
import { startTracing, stopTracing } from '../../telemetry/tracing';

/**
 * `s2s serve`: the defence proxy. Every flag mirrors an environment variable
 * (docs/configuration.md); flags win. Resolves when the server has shut down
 * after SIGTERM/SIGINT.
 */
export function register(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve the defended classifier over HTTP (REST, KServe V2, /metrics, /docs)');
  for (const o of OPTIONS) {
    if (!o.flag) continue;
    cmd.addOption(new Option(`${o.flag} <${o.arg ?? 'value'}>`, `${o.description} [env ${o.env}; default ${o.default}]`));
  }
  cmd.action(async (flags: Record<string, unknown>) => {
    const config = loadConfig(process.env, flags);
    // Refuse at once, before any model set is read, when CUDA was asked for and cannot work here.
    if (config.provider === 'cuda') requireCuda();
    startTracing();
    const server = await startServer(config, { handleSignals: true });
    await server.closed;
    await stopTracing();
  });
}
