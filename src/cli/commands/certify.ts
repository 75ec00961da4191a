import { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_KINDS, parseBaseKind } from '../../certify/base-classifier';
import { compareAtRadius, comparisonMarkdown } from '../../certify/compare';
import { certifyMarkdown, readCertifyResults, writeCertifyReport } from '../../certify/report';
import { CERTIFY_FILE } from '../../certify/results';
import { ExtraClassifier, mergeCertifyResults, runCertification } from '../../certify/run';
import { parseEpsList, parseNumber, positiveInt } from '../../evaluation/options';
import { parseProvider } from '../../runtime/providers';
import { UserError } from '../../util/errors';

interface CertifyFlags {
  models?: string;
  base: string;
  classifier: string[];
  denoiser: string[];
  sigma: string;
  n: string;
  n0: string;
  alpha: string;
  limit?: string;
  seed: string;
  batch: string;
  data?: string;
  holdout?: string;
  provider: string;
  threads?: string;
  report: boolean;
  clip?: boolean;
  reuse: string[];
  out?: string;
}

/** `noisy025=out/f-noise.onnx` → { name, path } */
function parseClassifier(v: string): ExtraClassifier {
  const m = /^(.+)=([^=]+)$/.exec(v.trim());
  if (!m) throw new UserError(`--classifier '${v}' is not NAME=FILE (e.g. gauss0.25=f-gauss.onnx)`);
  if (!existsSync(m[2])) throw new UserError(`--classifier ${m[1]}: ${m[2]} does not exist`);
  return { name: m[1].trim(), path: m[2] };
}

/**
 * `s2s certify`: randomized smoothing's CERTIFY (Cohen et al. 2019) on a
 * model set's base classifiers — plain f, f ∘ s (denoised smoothing), f ∘ AE
 * — and on extra classifier files; writes OUT/certify.json and OUT/certify.html.
 */
export function register(program: Command): void {
  program.enablePositionalOptions();
  const cmd = program
    .command('certify')
    .enablePositionalOptions()
    .description('certified L2 robustness by randomized smoothing (CERTIFY with Clopper-Pearson bounds); writes OUT/certify.json and OUT/certify.html')
    .option('--models <dir>', 'model set folder (models/<set> with manifest.json); required')
    .option('--base <list>', `base classifiers of the set to smooth, comma-separated: ${BASE_KINDS.join(', ')} (also fs, fae, fd; f∘d is the set's smoothing denoiser)`, 'f,f∘s')
    .option('--classifier <name=file>', 'an extra classifier to smooth on its own, e.g. one trained with --gaussian-augment (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--denoiser <name=file>', "another denoiser in front of the set's classifier (input 'input', output 'reconstruction'), e.g. a stability-trained S2SNet (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--sigma <list>', 'noise levels σ (pixels in [0, 1]), comma-separated', '0.25')
    .option('--n <n>', 'estimation draws per image', '10000')
    .option('--n0 <n>', 'selection draws per image', '100')
    .option('--alpha <a>', 'failure probability of each certificate', '0.001')
    .option('--limit <n>', 'certify a seeded random subset of n test images (default: all)')
    .option('--seed <s>', 'seed of the subset and of the noise streams', '0')
    .option('--batch <n>', 'noisy copies per session run', '1000')
    .option('--data <dir>', 'test data: a Fashion-MNIST IDX folder or an image folder (default $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)')
    .option('--holdout <n>', 'certify the last n images of the training data instead of the test set: the rows training held out (5000 for the default set), to choose between models without the test set')
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'auto')
    .option('--threads <n>', 'intra-op threads (default: all cores)')
    .option('--clip', 'clip x + δ to [0, 1] before the base classifier (for denoisers trained on clipped noisy images)')
    .option('--reuse <dir>', 'take the certificates of an earlier run (its OUT folder) where this run would draw the same noise: same model, σ, clip, n0, n, alpha, seed and batch, e.g. to extend a run to a larger --limit or finish an interrupted one (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-report', 'write certify.json only')
    .option('--out <dir>', 'output folder; required')
    .action(async (o: CertifyFlags) => {
      if (!o.models) throw new UserError('certify: --models <dir> is required');
      if (!o.out) throw new UserError('certify: --out <dir> is required');
      const bases = [...new Set(o.base.split(',').map((s) => s.trim()).filter(Boolean).map(parseBaseKind))];
      const alpha = parseNumber(o.alpha, '--alpha', (x) => x > 0 && x < 0.5, 'a number in (0, 0.5)')!;
      await runCertification({
        models: o.models,
        bases,
        classifiers: o.classifier.map(parseClassifier),
        denoisers: o.denoiser.map(parseClassifier),
        sigmas: parseEpsList(o.sigma, '--sigma'),
        n: positiveInt(o.n, '--n')!,
        n0: positiveInt(o.n0, '--n0')!,
        alpha,
        limit: positiveInt(o.limit, '--limit'),
        seed: parseNumber(o.seed, '--seed', (x) => Number.isInteger(x), 'an integer')!,
        batch: positiveInt(o.batch, '--batch')!,
        data: o.data,
        holdout: positiveInt(o.holdout, '--holdout'),
        provider: parseProvider(o.provider),
        threads: positiveInt(o.threads, '--threads'),
        clip: o.clip ?? false,
        reuse: o.reuse.map(readCertifyResults),
        out: o.out,
      });
      process.stderr.write(`wrote ${join(o.out, CERTIFY_FILE)}\n`);
      if (o.report) process.stderr.write(`wrote ${await writeCertifyReport(o.out)}\n`);
    });

  cmd
    .command('merge')
    .description('combine certify.json files made with the same draws (n0, n, alpha, seed, images) into one, with its report')
    .argument('<runs...>', 'certify OUT folders')
    .requiredOption('--out <dir>', 'output folder')
    .action(async (runs: string[], o: { out: string }) => {
      const merged = mergeCertifyResults(runs.map(readCertifyResults), runs);
      mkdirSync(o.out, { recursive: true });
      writeFileSync(join(o.out, CERTIFY_FILE), JSON.stringify(merged, null, 1) + '\n');
      process.stderr.write(`wrote ${join(o.out, CERTIFY_FILE)} (${merged.models.length} models)\nwrote ${await writeCertifyReport(o.out)}\n`);
    });

  cmd
    .command('summary')
    .description('print the certified-accuracy table of DIR/certify.json as Markdown')
    .argument('<dir>', 'a certify OUT folder')
    .option('--compare <pairs>', 'also compare models on the same images at --radius: A:B pairs, comma-separated, e.g. "f∘d:f-gauss0.25,f∘d:f" (McNemar p, ratio with a paired bootstrap 95 % interval)')
    .option('--radius <r>', 'radius of the comparison', '0.5')
    .action((dir: string, o: { compare?: string; radius: string }) => {
      const r = readCertifyResults(dir);
      process.stdout.write(certifyMarkdown(r));
      if (!o.compare) return;
      const radius = parseNumber(o.radius, '--radius', (x) => x >= 0, 'a radius ≥ 0')!;
      const pairs = o.compare.split(',').map((p) => {
        const [a, b, ...rest] = p.split(':').map((x) => x.trim());
        if (!a || !b || rest.length) throw new UserError(`--compare expects A:B pairs, got '${p}'`);
        return compareAtRadius(r, a, b, radius);
      });
      process.stdout.write('\n' + comparisonMarkdown(pairs));
    });
}
