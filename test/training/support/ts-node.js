/**
 * Runs a TypeScript file in a plain Node child process (the tests that kill a
 * process mid-write or start the CLI need a real process, not jest's sandbox),
 * compiling sources on the fly with swc as jest does.
 * Usage: node test/training/support/ts-node.js FILE.ts [args...]
 */
const { transformSync } = require('@swc/core');
const { readFileSync } = require('node:fs');
const { resolve } = require('node:path');

require.extensions['.ts'] = function compile(module, filename) {
  const { code } = transformSync(readFileSync(filename, 'utf8'), {
    filename,
    jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};

const [file, ...args] = process.argv.slice(2);
process.argv = [process.argv[0], resolve(file), ...args];
// Loaded as the main module, so `require.main === module` holds in the script.
require('node:module').runMain();
