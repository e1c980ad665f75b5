// azd `prepackage` hook of the api service (azure.yaml): stages what the Function App runs, with
// production dependencies only, in .deploy/api, which azure.yaml names as the service's `dist`.
// Remote build is off, so nothing is installed or compiled on Azure: the upload is the compiled
// app (dist/ without tests and benchmarks), host.json, package.json, the lockfile, .funcignore and
// `npm ci --omit=dev` node_modules, instead of sources plus every dev dependency (a browser driver,
// emulators, a Node binary: about 800 MB) that a remote build installs.
//
//   node infra/hooks/stage-package.mjs [--root DIR] [--out DIR] [--no-build] [--no-install]
//   node infra/hooks/stage-package.mjs --prune-platforms DIR
//
// --no-build skips `node scripts/build.mjs` (dist/ must be current); --no-install skips npm ci
// (tests use both to check the layout without the registry). After npm ci, the native binaries
// of platforms other than Linux x64 are removed (--prune-platforms does only that, on DIR).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * Top-level folders of dist/ that never run in Azure: tests, benchmarks, scripts, the local host
 * and the CLI (every function, orchestrator and activity loads without them).
 */
export const LEFT_OUT = ['test', 'bench', 'scripts', 'devhost', 'cli'];
/** Files of dist/ that only the local incremental build uses. */
const BUILD_STATE = ['.build-stamp.json', '.tsbuildinfo'];
/**
 * Native binaries the Function App cannot load: Flex Consumption runs Linux on x64, and
 * onnxruntime-node ships prebuilt libraries for every platform (about 220 of its 290 MB).
 */
export const OTHER_PLATFORMS = ['darwin', 'win32', 'linux/arm64'];

/** Removes the other platforms' onnxruntime-node binaries from a staged package; returns what went. */
export function prunePlatforms(out) {
  const bin = path.join(out, 'node_modules', 'onnxruntime-node', 'bin');
  if (!existsSync(bin)) return [];
  const removed = [];
  for (const napi of readdirSync(bin)) {
    for (const platform of OTHER_PLATFORMS) {
      const dir = path.join(bin, napi, platform);
      if (!existsSync(dir)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(path.relative(out, dir));
    }
  }
  return removed;
}

/** Files from the project root the package needs next to dist/. */
export const ROOT_FILES = ['host.json', 'package.json', 'package-lock.json', '.funcignore'];

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd} (exit ${result.status})`);
}

function sizeOf(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? sizeOf(p) : entry.isFile() ? statSync(p).size : 0;
  }
  return total;
}

export function stage({ root, out, build = true, install = true }) {
  if (build) run(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--quiet'], root);
  const dist = path.join(root, 'dist');
  if (!existsSync(dist)) throw new Error(`${dist} does not exist: build first (npm run build)`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const file of ROOT_FILES) {
    const from = path.join(root, file);
    if (!existsSync(from)) throw new Error(`${file} is missing in ${root}`);
    cpSync(from, path.join(out, file));
  }
  for (const entry of readdirSync(dist, { withFileTypes: true })) {
    if (LEFT_OUT.includes(entry.name) || BUILD_STATE.includes(entry.name)) continue;
    cpSync(path.join(dist, entry.name), path.join(out, 'dist', entry.name), { recursive: true });
  }
  if (install) {
    // The lockfile pins every version; --omit=dev leaves out devDependencies and what only they need.
    run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], out);
    prunePlatforms(out);
  }
  return { out, bytes: sizeOf(out) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      out: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'no-install': { type: 'boolean', default: false },
      'prune-platforms': { type: 'string' },
    },
  });
  if (values['prune-platforms']) {
    for (const dir of prunePlatforms(path.resolve(values['prune-platforms']))) console.log(`removed ${dir}`);
    process.exit(0);
  }
  const root = path.resolve(
    values.root ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..'),
  );
  const out = path.resolve(values.out ?? path.join(root, '.deploy', 'api'));
  try {
    const { bytes } = stage({ root, out, build: !values['no-build'], install: !values['no-install'] });
    console.log(`staged ${path.relative(root, out) || out}: ${(bytes / 1024 / 1024).toFixed(1)} MB`);
  } catch (err) {
    console.error(`stage-package: ${err.message}`);
    process.exit(1);
  }
}
