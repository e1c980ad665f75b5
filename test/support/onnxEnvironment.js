// A Jest environment for tests that run onnxruntime-node. The native binding builds its output
// tensors from typed arrays of Node's main realm, while Jest runs test code in a separate vm context
// with its own Float32Array & co, so onnxruntime-common's `instanceof` checks fail ("A float32
// tensor's data must be type of Float32Array"). Sharing the main realm's typed-array constructors
// (and ArrayBuffer) with the test context makes both sides agree. Use it with a docblock:
//   /** @jest-environment ./test/support/onnxEnvironment.js */
const { TestEnvironment } = require('jest-environment-node');

const shared = [
  'ArrayBuffer',
  'SharedArrayBuffer',
  'DataView',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of shared) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxEnvironment;
