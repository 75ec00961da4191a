import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GRADIENT_MODEL_NAMES, runGradientAnalysis } from '../../evaluation/gradients';
import { parseNumber, positiveInt } from '../../evaluation/options';
import { GRADIENTS_FILE, writeReport } from '../../report/report';
import { formatJson } from '../../evaluation/results';
import { parseProvider } from '../../runtime/providers';

/** `s2s gradients`: the paper's Table 1 and Figure 2 for a model set. */
export function register(program: Command): void {
  program
    .command('gradients')
    .description('gradient analysis (paper Table 1): mean SSIM of input-gradient magnitudes of f, f ∘ s, f ∘ AE, s and AE; writes OUT/gradients.json and OUT/report.html')
    .requiredOption('--models <dir>', 'model set folder with classifier, s2snet and autoencoder')
    .option('--data <dir>', 'test data (default: the Fashion-MNIST location)')
    .option('--limit <n>', 'a fixed subset of n images drawn with --seed (default: all)')
    .option('--seed <s>', 'seed of the subset and of the random labels', '0')
    .option('--batch-size <n>', 'images per batch', '64')
    .option('--examples <n>', 'images whose magnitude maps the report shows', '4')
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'auto')
    .option('--threads <n>', 'intra-op threads per session (default: all cores)')
    .option('--no-progress', 'no progress bar')
    .option('--no-report', 'write gradients.json only')
    .requiredOption('--out <dir>', 'output folder (may be the eval output, for one combined report)')
    .action(async (o: { models: string; data?: string; limit?: string; seed: string; batchSize: string; examples: string; provider: string; threads?: string; progress: boolean; report: boolean; out: string }) => {
      const r = await runGradientAnalysis({
        models: o.models,
        data: o.data,
        limit: positiveInt(o.limit, '--limit'),
        seed: parseNumber(o.seed, '--seed', (x) => Number.isInteger(x), 'an integer')!,
        batchSize: positiveInt(o.batchSize, '--batch-size'),
        examples: parseNumber(o.examples, '--examples', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'),
        provider: parseProvider(o.provider),
        threads: positiveInt(o.threads, '--threads'),
        progress: o.progress,
      });
      mkdirSync(o.out, { recursive: true });
      const path = join(o.out, GRADIENTS_FILE);
      writeFileSync(path, formatJson(r));
      const lines = r.pairs.map((p) => `  ${GRADIENT_MODEL_NAMES[p.a]} vs ${GRADIENT_MODEL_NAMES[p.b]}: ${p.meanSsim.toFixed(3)}`);
      process.stdout.write(`mean SSIM of gradient magnitudes over ${r.data.selected} images:\n${lines.join('\n')}\n`);
      process.stderr.write(`wrote ${path}\n`);
      if (o.report) process.stderr.write(`wrote ${await writeReport(o.out)}\n`);
    });
}
