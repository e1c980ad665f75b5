/**
 * onnxruntime-node for Jest tests. Import `ort` from here, not from the package, in a test.
 *
 * The native binding builds output tensors from the main realm's typed arrays, while
 * onnxruntime-common checks them with `instanceof` against the globals of the Jest sandbox, so every
 * `session.run` fails with "A float32 tensor's data must be type of Float32Array" (int64 likewise).
 * Giving the sandbox the main realm's typed-array classes before onnxruntime-common loads (its type
 * map captures them) makes both sides see one class. Outside
 * Jest (bench, the app) there is one realm and nothing is needed.
 */
import { runInThisContext } from 'node:vm';
import type * as Ort from 'onnxruntime-node';

const typedArrays = [
  'Float32Array',
  'Float64Array',
  'Int8Array',
  'Int16Array',
  'Int32Array',
  'Uint8Array',
  'Uint16Array',
  'Uint32Array',
  'Uint8ClampedArray',
  'BigInt64Array',
  'BigUint64Array',
] as const;

const sandbox = globalThis as unknown as Record<string, unknown>;
for (const name of typedArrays) {
  const main: unknown = runInThisContext(name);
  if (sandbox[name] !== main) sandbox[name] = main;
}

// Loaded only now, after the globals are set: its typed-array map is built at load time.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const ort = require('onnxruntime-node') as typeof Ort;
