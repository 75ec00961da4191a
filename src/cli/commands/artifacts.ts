import { Command, Option } from 'commander';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../onnx/io';
import { numel } from '../../onnx/tensor';
import { UserError } from '../../util/errors';
import { ArtifactOptions, FILES, LossKind, LossSpec, buildArtifacts, writeArtifacts } from '../../training/artifacts';
import { OptimizerConfig } from '../../training/optimizer';
import { parseNameList } from '../../training/params';

interface Opts {
  model: string;
  requiresGrad: string;
  frozen?: string;
  loss: LossKind;
  optimizer: 'adamw' | 'sgd';
  out: string;
  input?: string;
  lossOutput?: string;
  mseTarget?: string;
  klReference?: string;
  referenceModel?: string;
  weightDecay?: string;
  beta1?: string;
  beta2?: string;
  eps?: string;
  momentum?: string;
  nesterov?: boolean;
  trainBatchnorm: boolean;
  json?: boolean;
}

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new UserError(`${flag} expects a non-negative number, got '${v}'`);
  return x;
}

/** `s2s artifacts`: training artifacts (ORT on-device-training layout) for a model. */
export function register(program: Command): void {
  program
    .command('artifacts')
    .description('write training artifacts for a model: training_model.onnx, eval_model.onnx, optimizer_model.onnx and checkpoint, in standard ONNX ops')
    .requiredOption('--model <path>', 'the model to train (.onnx)')
    .requiredOption('--requires-grad <all|names>', "'all' (weights of parametric layers) or comma-separated names / * patterns")
    .option('--frozen <names>', 'comma-separated names / * patterns to keep constant (no gradient is computed for them)')
    .addOption(new Option('--loss <kind>', 'training loss').choices(['cross-entropy', 'mse', 'kl']).makeOptionMandatory())
    .addOption(new Option('--optimizer <kind>', 'update rule').choices(['adamw', 'sgd']).default('adamw'))
    .requiredOption('--out <dir>', 'folder to write the artifacts into')
    .option('--input <name>', 'image input of the model (default: its first float input)')
    .option('--loss-output <name>', "model output the loss reads (default 'logits', or 'reconstruction' for mse)")
    .option('--mse-target <name>', 'mse: value compared with the output (default: the image input, i.e. reconstruction)')
    .option('--kl-reference <name>', 'kl: value of the model holding the reference logits P in KL(P‖Q)')
    .option('--reference-model <path>', 'kl: frozen classifier applied to the clean input to give P (stage-2 label-free loss)')
    .option('--weight-decay <x>', 'decoupled weight decay (AdamW, default 0.01) or L2 term (SGD, default 0)')
    .option('--beta1 <x>', 'AdamW β1 (default 0.9)')
    .option('--beta2 <x>', 'AdamW β2 (default 0.999)')
    .option('--eps <x>', 'AdamW ε (default 1e-8)')
    .option('--momentum <x>', 'SGD momentum (default 0.9)')
    .option('--nesterov', 'SGD with Nesterov momentum')
    .option('--no-train-batchnorm', 'keep BatchNorm in inference form even where its scale/bias train')
    .option('--json', 'print the summary as JSON')
    .action((o: Opts) => {
      const model = loadModel(o.model);
      const loss: LossSpec = { kind: o.loss, output: o.lossOutput, target: o.mseTarget };
      if (o.loss === 'kl') {
        if (!o.klReference === !o.referenceModel) throw new UserError('--loss kl needs exactly one of --kl-reference NAME or --reference-model C.onnx');
        loss.reference = o.klReference ?? { classifier: loadModel(o.referenceModel!) };
      } else if (o.klReference || o.referenceModel) {
        throw new UserError('--kl-reference and --reference-model apply to --loss kl only');
      }
      const optimizer: OptimizerConfig =
        o.optimizer === 'adamw'
          ? { kind: 'adamw', weightDecay: num(o.weightDecay, '--weight-decay'), beta1: num(o.beta1, '--beta1'), beta2: num(o.beta2, '--beta2'), epsilon: num(o.eps, '--eps') }
          : { kind: 'sgd', weightDecay: num(o.weightDecay, '--weight-decay'), momentum: num(o.momentum, '--momentum'), nesterov: o.nesterov };
      const requiresGrad = o.requiresGrad.trim() === 'all' ? 'all' : parseNameList(o.requiresGrad);
      const opts: ArtifactOptions = { requiresGrad, frozen: parseNameList(o.frozen), loss, optimizer, input: o.input, trainBatchNorm: o.trainBatchnorm };
      const a = buildArtifacts(model, opts);
      writeArtifacts(o.out, a);

      const count = (names: string[]) => names.reduce((s, n) => s + numel(model.initializers.get(n)!.dims), 0);
      const files = Object.fromEntries(Object.values(FILES).map((f) => [f, statSync(join(o.out, f)).size]));
      const summary = {
        out: o.out,
        loss: a.info.loss,
        optimizer: a.info.optimizer,
        inputs: [a.info.imageInput, ...(a.info.labelsInput ? [a.info.labelsInput] : [])],
        trainable: { tensors: a.info.params.length, values: count(a.info.params.map((p) => p.name)), names: a.info.params.map((p) => p.name) },
        frozen: { tensors: a.info.frozen.length, values: count(a.info.frozen), names: a.info.frozen },
        runningStatistics: a.info.buffers.map((b) => b.name),
        files,
      };
      if (o.json) {
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const n = (x: number) => x.toLocaleString('en-US');
      process.stdout.write(
        [
          `training artifacts for '${model.name}' in ${o.out}`,
          `  loss: ${a.info.loss.kind} on '${a.info.loss.output}'${a.info.loss.reference ? ` vs '${a.info.loss.reference}'` : ''}; optimizer: ${JSON.stringify(a.info.optimizer)}`,
          `  data inputs: ${summary.inputs.join(', ')}`,
          `  trainable: ${summary.trainable.tensors} tensors, ${n(summary.trainable.values)} values`,
          `  frozen: ${summary.frozen.tensors} tensors, ${n(summary.frozen.values)} values (no gradients computed)`,
          `  BatchNorm running statistics updated in training: ${summary.runningStatistics.length}`,
          ...Object.entries(files).map(([f, size]) => `  ${f}: ${n(size)} bytes`),
        ].join('\n') + '\n',
      );
    });
}
