import { Command } from 'commander';
import { dataTypeName } from '../../onnx/dtype';
import { loadModel } from '../../onnx/io';
import { inferShapes } from '../../onnx/shapes';
import { describeTensor } from '../../onnx/tensor';

/** `s2s info MODEL.onnx`: what a graph takes, gives and contains. */
export function register(program: Command): void {
  program
    .command('info')
    .description('show the inputs, outputs, operators and parameters of an ONNX model')
    .argument('<model>', 'path to an .onnx file')
    .option('--json', 'print JSON instead of text')
    .action((path: string, opts: { json?: boolean }) => {
      const g = loadModel(path);
      const ops = new Map<string, number>();
      for (const n of g.nodes) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
      let params = 0;
      for (const t of g.initializers.values()) params += t.data.length;
      const shapes = inferShapes(g);
      const io = (v: { name: string; dataType: number; shape?: (number | string)[] }) => ({
        name: v.name,
        type: dataTypeName(v.dataType),
        shape: v.shape ?? shapes.get(v.name)?.shape ?? null,
      });
      const summary = {
        name: g.name,
        opset: g.opset,
        inputs: g.inputs.map(io),
        outputs: g.outputs.map(io),
        operators: Object.fromEntries([...ops].sort((a, b) => b[1] - a[1])),
        initializers: g.initializers.size,
        parameters: params,
        metadata: g.metadata ?? {},
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const fmt = (v: ReturnType<typeof io>) => `  ${v.name}: ${v.type} [${(v.shape ?? ['?']).join(', ')}]`;
      const lines = [
        `${summary.name} (opset ${summary.opset})`,
        'inputs:',
        ...summary.inputs.map(fmt),
        'outputs:',
        ...summary.outputs.map(fmt),
        `operators: ${[...ops].map(([k, v]) => `${k}×${v}`).join(' ')}`,
        `parameters: ${params.toLocaleString('en-US')} in ${g.initializers.size} initializers`,
      ];
      if ([...g.initializers.values()].length <= 8) lines.push(...[...g.initializers].map(([k, t]) => `  ${k}: ${describeTensor(t)}`));
      process.stdout.write(lines.join('\n') + '\n');
    });
}
