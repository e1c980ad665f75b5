// Runs lint, typecheck (build) and every jest test, then prints one plain summary line from
// jest's JSON result, so a run that executed no test is visible in CI logs.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit', shell: false });
const npx = (bin, args) => run(process.execPath, [`node_modules/${bin}`, ...args]);
const resultFile = '.jest-results.json';

let failedStep = null;
const lint = npx('eslint/bin/eslint.js', ['.', '--max-warnings', '0']);
if (lint.status !== 0) failedStep = 'lint';
const tsc = npx('typescript/bin/tsc', ['-p', 'tsconfig.json']);
if (tsc.status !== 0) failedStep = failedStep ?? 'typecheck';

rmSync(resultFile, { force: true });
const extra = process.argv.slice(2);
const jest = npx('jest/bin/jest.js', ['--json', `--outputFile=${resultFile}`, ...extra]);
let passed = 0;
let failed = 0;
try {
  const result = JSON.parse(readFileSync(resultFile, 'utf8'));
  passed = result.numPassedTests;
  failed = result.numFailedTests + (result.numRuntimeErrorTestSuites ?? 0);
} catch {
  failed += 1;
  console.error('jest produced no JSON result');
}
if (failedStep) console.error(`${failedStep} failed`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failedStep || jest.status !== 0 || failed > 0 || passed === 0 ? 1 : 0);
