// Lets a child process or worker thread run the TypeScript sources directly:
// `node -r test/support/registerTs.js worker/trainingJob.ts …`. Compiles each .ts file with swc
// (the same transform jest uses) on require, so tests need no build step.
const Module = require('node:module');
const { readFileSync } = require('node:fs');
const { transformSync } = require('@swc/core');

Module._extensions['.ts'] = function compileTs(module, filename) {
  const { code } = transformSync(readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  });
  module._compile(code, filename);
};
