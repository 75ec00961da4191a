import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_EPS, parseEpsList, parseNumber, positiveInt } from '../../evaluation/options';
import { runTransfer } from '../../evaluation/transfer';
import { TRANSFER_FILE, writeReport } from '../../report/report';
import { formatJson } from '../../evaluation/results';
import { parseProvider } from '../../runtime/providers';

/** `s2s transfer`: FGSM crafted on each classifier, evaluated on every other (paper Figure 8). */
export function register(program: Command): void {
  program
    .command('transfer')
    .description('transferability matrix: FGSM crafted on each classifier, classified by each; writes OUT/transfer.json and OUT/report.html')
    .requiredOption('--models <dirs>', 'comma-separated model-set folders, or folders holding several sets (each set contributes its classifier)')
    .option('--data <dir>', 'test data (default: the Fashion-MNIST location)')
    .option('--eps <list>', 'L∞ radii, pixels in [0, 1]', DEFAULT_EPS)
    .option('--limit <n>', 'a fixed subset of n images drawn with --seed (default: all)')
    .option('--seed <s>', 'seed of the subset', '0')
    .option('--batch-size <n>', 'images per batch', '64')
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'auto')
    .option('--threads <n>', 'intra-op threads per session (default: all cores)')
    .option('--no-progress', 'no progress bar')
    .option('--no-report', 'write transfer.json only')
    .requiredOption('--out <dir>', 'output folder (may be the eval output, for one combined report)')
    .action(async (o: { models: string; data?: string; eps: string; limit?: string; seed: string; batchSize: string; provider: string; threads?: string; progress: boolean; report: boolean; out: string }) => {
      const r = await runTransfer({
        models: o.models.split(',').map((s) => s.trim()).filter(Boolean),
        data: o.data,
        eps: parseEpsList(o.eps),
        limit: positiveInt(o.limit, '--limit'),
        seed: parseNumber(o.seed, '--seed', (x) => Number.isInteger(x), 'an integer')!,
        batchSize: positiveInt(o.batchSize, '--batch-size'),
        provider: parseProvider(o.provider),
        threads: positiveInt(o.threads, '--threads'),
        progress: o.progress,
      });
      mkdirSync(o.out, { recursive: true });
      const path = join(o.out, TRANSFER_FILE);
      writeFileSync(path, formatJson(r));
      process.stderr.write(`wrote ${path}\n`);
      if (o.report) process.stderr.write(`wrote ${await writeReport(o.out)}\n`);
    });
}
