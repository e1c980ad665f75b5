#!/usr/bin/env node
// The `sluice` command as npm links it (package.json "bin"): builds dist/ first when a source has
// changed since the last build (scripts/build.mjs; nothing to do answers in milliseconds), then
// runs the compiled CLI, dist/cli/sluice.js, in this process.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, staleReason } from './build.mjs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(
    `sluice: needs Node.js 22 or later, not ${process.version}. \`npx sluice\` runs it on the project's own Node 22 (node_modules/.bin/node).`,
  );
  process.exit(1);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reason = staleReason(root);
if (reason) {
  console.error(`sluice: ${reason}: building dist/ first`);
  // A failed build is an error like any other: 1, never tsc's own status (2 would read as
  // "changes" to `sluice pipelines plan --detailed-exitcode`).
  if (build(root, { quiet: true }) !== 0) process.exit(1);
}
createRequire(import.meta.url)(path.join(root, 'dist', 'cli', 'sluice.js')).runCli(process.argv.slice(2));
