/**
 * Jest runs each test file in its own VM context, whose Float32Array is not
 * the one native addons see. onnxruntime-node checks `data instanceof
 * Float32Array` against the outer realm, so output tensors fail that check
 * inside the sandbox. Sharing the outer realm's typed-array constructors makes
 * tensors cross the boundary as they do in a normal Node process.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'Math',
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView',
  'Float32Array', 'Float64Array', 'Int8Array', 'Int16Array', 'Int32Array',
  'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array',
];

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
