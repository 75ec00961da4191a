import { Command } from 'commander';
import { InputGradientLoss, inputGradientGraph } from '../../autodiff/inputGradient';
import { loadModel, saveModel } from '../../onnx/io';

/** `s2s grad`: write the input-gradient graph of a classifier (forward + loss + d loss / d input). */
export function register(program: Command): void {
  program
    .command('grad')
    .description('write a graph computing a classifier\'s per-sample loss and its gradient with respect to the input, in standard ONNX ops')
    .requiredOption('--model <path>', 'classifier .onnx (opset 13 or later; dynamic batch axis allowed)')
    .requiredOption('--out <path>', 'where to write the gradient graph')
    .option('--loss <name>', 'loss to differentiate: cross-entropy', 'cross-entropy')
    .option('--logits <name>', "the output holding the logits (default: 'logits' or the only output)")
    .action((opts: { model: string; out: string; loss: string; logits?: string }) => {
      const model = loadModel(opts.model);
      const { graph, gradients } = inputGradientGraph(model, { loss: opts.loss as InputGradientLoss, logits: opts.logits });
      saveModel(graph, opts.out);
      const grads = [...gradients.values()].join(', ');
      process.stdout.write(`${opts.out}: inputs ${graph.inputs.map((v) => v.name).join(', ')}; outputs ${graph.outputs.map((v) => v.name).join(', ')} (gradients: ${grads})\n`);
    });
}
