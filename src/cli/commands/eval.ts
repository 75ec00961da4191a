import { Command, Option } from 'commander';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseNoise } from '../../attacks/noise';
import { LOSS_KINDS, LossKind } from '../../attacks/objective';
import { ATTACK_NAMES } from '../../attacks/registry';
import { DEFAULT_EPS, nonNegative, parseEpsList, parseNumber, positive, positiveInt } from '../../evaluation/options';
import { formatJson, mergeResults, readResults } from '../../evaluation/results';
import { runEvaluation } from '../../evaluation/runner';
import { DEFAULT_ENSEMBLE_SETTINGS, ENSEMBLE_DEFAULTS, EnsembleResults, MEMBER_NAMES, parseEnsembleSettings, parseMembers, runEnsemble } from '../../evaluation/ensemble';
import { mergeEnsembleResults } from '../../evaluation/ensemble-merge';
import { writeAblationReadme } from '../../report/ablation-folder';
import { ensembleMarkdown, isEnsembleResultsFile, readEnsembleResults } from '../../report/ensemble-summary';
import { parseShard } from '../../evaluation/selection';
import { DETECTOR_ATTACKS, DETECTOR_DEFAULTS, DetectorAttackName, runDetectorComparison } from '../../evaluation/detector-comparison';
import { detectorsMarkdown } from '../../report/detectors-summary';
import { PAPER_SETTINGS, SETTING_NAMES, parseSettings } from '../../evaluation/settings';
import { summaryMarkdown } from '../../report/summary';
import { RESULTS_FILE, writeReport } from '../../report/report';
import { parseProvider } from '../../runtime/providers';
import { UserError } from '../../util/errors';

interface EvalFlags {
  models?: string;
  data?: string;
  attacks: string;
  settings: string;
  eps: string;
  noise?: string;
  limit?: string;
  seed: string;
  shard?: string;
  batchSize: string;
  targeted?: boolean;
  eotSamples: string;
  bimIterations?: string;
  bimStep?: string;
  pgdIterations?: string;
  pgdStep?: string;
  pgdRestarts?: string;
  pgdLoss?: LossKind;
  cwIterations?: string;
  cwKappa?: string;
  cwSearchSteps?: string;
  cwLr?: string;
  cwConst?: string;
  attackLimit?: string;
  members: string;
  ensembleSettings: string;
  apgdIterations?: string;
  apgdRestarts?: string;
  apgdTargets?: string;
  gallery: string;
  galleryEps?: string;
  provider: string;
  threads?: string;
  progress: boolean;
  report: boolean;
  out?: string;
}

function writeResults(out: string, results: unknown): string {
  mkdirSync(out, { recursive: true });
  const path = join(out, RESULTS_FILE);
  writeFileSync(path, formatJson(results));
  return path;
}

/** What an ensemble run writes, and a merge of ensemble runs too: the results document and its summary. */
function writeEnsembleResults(out: string, results: EnsembleResults): void {
  const path = writeResults(out, results);
  writeFileSync(join(out, 'summary.md'), ensembleMarkdown(results));
  process.stderr.write(`wrote ${path} and summary.md\n`);
}

/** `cw=200,pgd+eot=500` → { cw: 200, 'pgd+eot': 500 } */
function parseAttackLimits(v: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z+]+)=(\d+)$/i.exec(part);
    if (!m) throw new UserError(`--attack-limit '${part}' is not ATTACK=N (e.g. cw=200)`);
    out[m[1].toLowerCase()] = positiveInt(m[2], '--attack-limit')!;
  }
  return out;
}

/** A shard's OUT folder or its results.json. */
function resultsPath(p: string): string {
  return existsSync(p) && statSync(p).isDirectory() ? join(p, RESULTS_FILE) : p;
}

/**
 * `s2s eval`: the paper's protocol (attacks × settings × ε × noise) on a
 * model set; `s2s eval merge` combines shards (or ensemble runs at different ε); `s2s eval report` redraws
 * report.html from the JSON documents in a folder.
 */
export function register(program: Command): void {
  // Options after `eval merge` belong to merge, not to eval (both have --out).
  program.enablePositionalOptions();
  const cmd = program
    .command('eval')
    .enablePositionalOptions()
    .description('evaluate a model set against FGSM, BIM, PGD and CW in the paper’s settings; writes OUT/results.json and OUT/report.html')
    // --models and --out are checked in the action: commander would demand them of `eval merge` too.
    .option('--models <dir>', 'model set folder (models/<set> with manifest.json); required')
    .option('--data <dir>', 'test data: a Fashion-MNIST IDX folder or an image folder (default $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)')
    .option('--attacks <list>', `comma-separated: ${ATTACK_NAMES.join(', ')}, each optionally +eot (gradient averaged over noise draws); or 'ensemble' alone: worst case over APGD members (see --members)`, 'fgsm,bim,cw,pgd')
    .option('--settings <list>', `comma-separated: ${SETTING_NAMES.join(', ')} (detector-aware: fools f and f ∘ s together to slip past the detector; not one of the paper's)`, PAPER_SETTINGS.join(','))
    .option('--eps <list>', 'L∞ radii, pixels in [0, 1]', DEFAULT_EPS)
    .option('--noise <list>', 'noise layers to evaluate besides none, KIND:SIGMA (gaussian, uniform, sign), e.g. gaussian:0.05,sign:0.05')
    .option('--limit <n>', 'evaluate a fixed subset of n images drawn with --seed (default: all)')
    .option('--seed <s>', 'seed of the subset, the random starts, the noise draws and the targets', '0')
    .option('--shard <i/n>', 'evaluate the i-th of n slices (i from 0, as JOB_COMPLETION_INDEX); combine with `s2s eval merge`')
    .option('--batch-size <n>', 'images per attack batch', '64')
    .option('--targeted', 'targeted attacks, one seeded random target class per image')
    .option('--eot-samples <n>', 'noise draws per gradient for +eot attacks', '8')
    .option('--bim-iterations <n>', 'BIM iterations (default 10)')
    .option('--bim-step <f>', 'BIM step α as a fraction of ε (default 0.25)')
    .option('--pgd-iterations <n>', 'PGD iterations (default 20)')
    .option('--pgd-step <f>', 'PGD step as a fraction of ε (default 2.5 / iterations)')
    .option('--pgd-restarts <n>', 'PGD random restarts (default 1)')
    .addOption(new Option('--pgd-loss <loss>', 'PGD loss (default cross-entropy)').choices([...LOSS_KINDS]))
    .option('--cw-iterations <n>', 'CW Adam iterations per search step (default 100)')
    .option('--cw-kappa <k>', 'CW confidence κ (default 0)')
    .option('--cw-search-steps <n>', 'CW binary-search steps over c (default 5)')
    .option('--cw-lr <x>', 'CW Adam learning rate in tanh space (default 0.1)')
    .option('--cw-const <c>', 'CW initial constant c (default 0.1)')
    .option('--attack-limit <list>', 'run an attack on N of the selected images only (evenly spread, so shards share the cost), e.g. cw=200,pgd+eot=500 (CW costs ~500 gradient passes per image)')
    .option('--members <list>', `ensemble members, run in this order on the images still robust: ${MEMBER_NAMES.join(', ')}`, MEMBER_NAMES.join(','))
    .option('--ensemble-settings <list>', 'ensemble settings: undefended, whitebox, whitebox-bpda, graybox, autoencoder, autoencoder-bpda, transfer-ae, detector-aware, detector-aware-features (the last three not in the default)', DEFAULT_ENSEMBLE_SETTINGS.join(','))
    .option('--apgd-iterations <n>', `APGD iterations (default ${ENSEMBLE_DEFAULTS.iterations})`)
    .option('--apgd-restarts <n>', `APGD random restarts for apgd-ce and apgd-dlr (default ${ENSEMBLE_DEFAULTS.restarts})`)
    .option('--apgd-targets <n>', `APGD-T target classes (default ${ENSEMBLE_DEFAULTS.targetClasses})`)
    .option('--gallery <n>', 'images shown in the report gallery', '4')
    .option('--gallery-eps <e>', 'ε of the gallery and the detailed tables (default 0.05 if in --eps, else the largest)')
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'auto')
    .option('--threads <n>', 'intra-op threads per session (default: all cores)')
    .option('--no-progress', 'no progress bar')
    .option('--no-report', 'write results.json only')
    .option('--out <dir>', 'output folder; required')
    .action(async (o: EvalFlags) => {
      if (!o.models) throw new UserError('eval: --models <dir> is required');
      if (!o.out) throw new UserError('eval: --out <dir> is required');
      if (o.attacks.trim().toLowerCase() === 'ensemble') {
        // Every ensemble process evaluates the whole selection; split the work by ε instead and merge the runs.
        if (o.shard) throw new UserError('--attacks ensemble does not take --shard (it does not slice images); run one process per --eps or per group of --ensemble-settings on the same --limit/--seed and combine them with `s2s eval merge`');
        // The ensemble's own defaults: the ε of the headline table, its own settings.
        const eps = cmd.getOptionValueSource('eps') === 'default' ? [0.02, 0.05, 0.1] : parseEpsList(o.eps);
        const noise = (o.noise ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(parseNoise);
        if (noise.length > 1) throw new UserError('--attacks ensemble takes at most one --noise layer (run once per layer)');
        const results = await runEnsemble({
          models: o.models,
          data: o.data,
          settings: parseEnsembleSettings(o.ensembleSettings),
          members: parseMembers(o.members),
          params: {
            iterations: positiveInt(o.apgdIterations, '--apgd-iterations') ?? ENSEMBLE_DEFAULTS.iterations,
            restarts: positiveInt(o.apgdRestarts, '--apgd-restarts') ?? ENSEMBLE_DEFAULTS.restarts,
            targetClasses: positiveInt(o.apgdTargets, '--apgd-targets') ?? ENSEMBLE_DEFAULTS.targetClasses,
          },
          eps,
          noise: noise[0],
          eotSamples: positiveInt(o.eotSamples, '--eot-samples'),
          limit: positiveInt(o.limit, '--limit'),
          seed: parseNumber(o.seed, '--seed', (x) => Number.isInteger(x), 'an integer')!,
          batchSize: positiveInt(o.batchSize, '--batch-size'),
          provider: parseProvider(o.provider),
          threads: positiveInt(o.threads, '--threads'),
          progress: o.progress,
        });
        writeEnsembleResults(o.out, results);
        return;
      }
      const eps = parseEpsList(o.eps);
      const galleryEps = parseNumber(o.galleryEps, '--gallery-eps');
      if (galleryEps !== undefined && !eps.includes(galleryEps)) throw new UserError(`--gallery-eps ${galleryEps} is not one of --eps ${eps.join(', ')}`);
      const results = await runEvaluation({
        models: o.models,
        data: o.data,
        attacks: o.attacks,
        settings: parseSettings(o.settings),
        eps,
        noise: (o.noise ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(parseNoise),
        limit: positiveInt(o.limit, '--limit'),
        seed: parseNumber(o.seed, '--seed', (x) => Number.isInteger(x), 'an integer')!,
        shard: o.shard ? parseShard(o.shard) : undefined,
        batchSize: positiveInt(o.batchSize, '--batch-size'),
        targeted: o.targeted ?? false,
        eotSamples: positiveInt(o.eotSamples, '--eot-samples'),
        attackParams: {
          bim: { iterations: positiveInt(o.bimIterations, '--bim-iterations'), stepFraction: positive(o.bimStep, '--bim-step') },
          pgd: {
            iterations: positiveInt(o.pgdIterations, '--pgd-iterations'),
            stepFraction: positive(o.pgdStep, '--pgd-step'),
            restarts: positiveInt(o.pgdRestarts, '--pgd-restarts'),
            loss: o.pgdLoss,
          },
          cw: {
            iterations: positiveInt(o.cwIterations, '--cw-iterations'),
            kappa: nonNegative(o.cwKappa, '--cw-kappa'),
            searchSteps: positiveInt(o.cwSearchSteps, '--cw-search-steps'),
            learningRate: positive(o.cwLr, '--cw-lr'),
            initialConst: positive(o.cwConst, '--cw-const'),
          },
        },
        attackLimits: parseAttackLimits(o.attackLimit),
        gallerySize: parseNumber(o.gallery, '--gallery', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'),
        galleryEps,
        provider: parseProvider(o.provider),
        threads: positiveInt(o.threads, '--threads'),
        progress: o.progress,
      });
      const path = writeResults(o.out, results);
      process.stderr.write(`wrote ${path}\n`);
      if (o.report) process.stderr.write(`wrote ${await writeReport(o.out)}\n`);
    });

  cmd
    .command('merge')
    .description('combine the results.json of shards (folders or files) into one result and report; or ensemble runs at different ε or of different settings on the same images into one ensemble result and summary.md')
    .argument('<results...>', 'shard OUT folders or their results.json files; or ensemble OUT folders / results.json files')
    .requiredOption('--out <dir>', 'output folder')
    .option('--no-report', 'write results.json only (shards; an ensemble merge always writes summary.md, as its runs do)')
    .action(async (inputs: string[], o: { out: string; report: boolean }) => {
      const paths = inputs.map(resultsPath);
      const ensemble = paths.map(isEnsembleResultsFile);
      if (ensemble.some(Boolean)) {
        const other = paths.find((_, i) => !ensemble[i]);
        if (other) throw new UserError(`merge: ${other} is not an ensemble results file but ${paths[ensemble.indexOf(true)]} is; merge ensemble runs and per-attack shards separately`);
        writeEnsembleResults(o.out, mergeEnsembleResults(paths.map(readEnsembleResults), { sources: paths }));
        return;
      }
      const merged = mergeResults(paths.map(readResults), paths);
      const path = writeResults(o.out, merged);
      process.stderr.write(`wrote ${path} (${merged.coverage.evaluated} of ${merged.data.selected} images${merged.coverage.complete ? '' : ', INCOMPLETE'})\n`);
      if (o.report) process.stderr.write(`wrote ${await writeReport(o.out)}\n`);
    });

  cmd
    .command('summary')
    .description('print the main tables of DIR/results.json as Markdown (for READMEs)')
    .argument('<dir>', 'an eval output folder, or its results.json')
    .option('--eps <e>', 'ε of the noise and detection tables (default: the gallery ε)')
    .action((dir: string, o: { eps?: string }) => {
      const eps = o.eps === undefined ? undefined : positive(o.eps, '--eps');
      const path = resultsPath(dir);
      if (isEnsembleResultsFile(path)) process.stdout.write(ensembleMarkdown(readEnsembleResults(path)));
      else process.stdout.write(summaryMarkdown(readResults(path), { eps }));
    });

  cmd
    .command('detectors')
    .description('compare cheap detection scores (KL, KL under noise draws, feature- and pixel-space reconstruction error, L1 of softmaxes) against BIM or APGD-CE in the undefended, detector-aware (KL) and feature-aware settings; writes OUT/detectors.json and OUT/summary.md (docs/detectors.md)')
    .option('--models <dir>', 'model set folder; required')
    .option('--data <dir>', 'Fashion-MNIST IDX folder: test split attacked, last --holdout training images calibrate (default $FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist)')
    .option('--limit <n>', 'test images, a subset drawn with --seed as `s2s eval` draws it', String(DETECTOR_DEFAULTS.limit))
    .option('--seed <s>', 'seed of the subset, the attack and the noise draws', '0')
    .option('--eps <e>', 'L∞ radius, pixels in [0, 1]', String(DETECTOR_DEFAULTS.eps))
    .addOption(new Option('--attack <name>', 'attack').choices([...DETECTOR_ATTACKS]).default(DETECTOR_DEFAULTS.attack))
    .option('--iterations <n>', 'attack iterations', String(DETECTOR_DEFAULTS.iterations))
    .option('--sigma <s>', 'σ of the Gaussian draws of kl-noise', String(DETECTOR_DEFAULTS.sigma))
    .option('--draws <k>', 'noise draws K of kl-noise', String(DETECTOR_DEFAULTS.draws))
    .option('--feature-weight <w>', 'weight of the feature-space error in the feature-aware attack, in units of its threshold', String(DETECTOR_DEFAULTS.featureWeight))
    .option('--holdout <n>', 'calibration images: the last n of the training split [default: min(5000, 10%), as s2s train]')
    .option('--fpr <x>', 'false-positive rate of the thresholds on the calibration images', String(DETECTOR_DEFAULTS.falsePositiveRate))
    .option('--batch-size <n>', 'images per batch', '100')
    .option('--provider <p>', 'execution provider: auto, cpu or cuda', 'auto')
    .option('--threads <n>', 'intra-op threads per session (default: all cores)')
    .option('--no-progress', 'no progress bar')
    .option('--out <dir>', 'output folder; required')
    .action(async (o: { models?: string; data?: string; limit: string; seed: string; eps: string; attack: DetectorAttackName; iterations: string; sigma: string; draws: string; featureWeight: string; holdout?: string; fpr: string; batchSize: string; provider: string; threads?: string; progress: boolean; out?: string }) => {
      if (!o.models) throw new UserError('eval detectors: --models <dir> is required');
      if (!o.out) throw new UserError('eval detectors: --out <dir> is required');
      const results = await runDetectorComparison({
        models: o.models,
        data: o.data,
        limit: positiveInt(o.limit, '--limit'),
        seed: parseNumber(o.seed, '--seed', (x) => Number.isInteger(x), 'an integer')!,
        eps: parseNumber(o.eps, '--eps', (x) => x > 0 && x <= 1, 'a number in (0, 1]')!,
        attack: o.attack,
        iterations: positiveInt(o.iterations, '--iterations'),
        noise: { sigma: positive(o.sigma, '--sigma'), draws: positiveInt(o.draws, '--draws') },
        featureWeight: parseNumber(o.featureWeight, '--feature-weight', (x) => x >= 0 && Number.isFinite(x), 'a number ≥ 0'),
        holdout: positiveInt(o.holdout, '--holdout'),
        falsePositiveRate: parseNumber(o.fpr, '--fpr', (x) => x > 0 && x < 1, 'a number in (0, 1)'),
        batchSize: positiveInt(o.batchSize, '--batch-size'),
        provider: parseProvider(o.provider),
        threads: positiveInt(o.threads, '--threads'),
        progress: o.progress,
      });
      mkdirSync(o.out, { recursive: true });
      writeFileSync(join(o.out, 'detectors.json'), formatJson(results));
      writeFileSync(join(o.out, 'summary.md'), detectorsMarkdown(results));
      process.stderr.write(`wrote ${join(o.out, 'detectors.json')} and summary.md\n`);
    });

  cmd
    .command('ablation')
    .description('rewrite the table block of DIR/README.md from the stage-2 ablation runs in DIR (docs/ensemble.md)')
    .argument('<dir>', 'an ablation folder, e.g. reports/fashion-mnist-ablation')
    .action((dir: string) => {
      process.stderr.write(`wrote ${writeAblationReadme(dir)}\n`);
    });

  cmd
    .command('report')
    .description('redraw DIR/report.html from the results.json, gradients.json and transfer.json in DIR')
    .argument('<dir>', 'an eval/gradients/transfer output folder')
    .action(async (dir: string) => {
      process.stderr.write(`wrote ${await writeReport(dir)}\n`);
    });
}
