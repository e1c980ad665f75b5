// Builds dist/ with tsc only when something tsc reads has changed, so `npm start`, `npm run demo`
// and `npx sluice` start at once on an unchanged tree.
//
// Current means: the content of every source tsc compiles (the tsconfig's `include` folders minus
// its `exclude`: .ts, .tsx, .mts, .cts and .json files), of tsconfig.json, package.json and
// package-lock.json (the compiler and the type packages) hash to what dist/.build-stamp.json
// recorded after the last successful build, and every source still has its .js in dist/. Content,
// not mtimes: a checkout that brings back the same text does not rebuild, a copied-in older file
// does. The stamp lives in dist/, so deleting dist/ rebuilds from scratch.
//
// Stale: tsc runs with --incremental (its build info next to the stamp, so it only re-checks what
// changed), the outputs of sources that no longer exist are removed (the Functions host would
// otherwise still load a deleted trigger), and the stamp is written only when tsc succeeds.
//
//   node scripts/build.mjs [--project DIR] [--force] [--check] [--quiet]
//     --check   exit 0 if dist/ is current, 1 if a build is needed, and say why; builds nothing
//     --force   build even when current
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STAMP = '.build-stamp.json';
const BUILD_INFO = '.tsbuildinfo';
const SOURCE = /\.(ts|tsx|mts|cts|json)$/;
const EXTRA_INPUTS = ['tsconfig.json', 'package.json', 'package-lock.json'];

/** The tsconfig's compile roots, its excludes and its outDir, read as plain JSON. */
export function readProject(root) {
  const config = JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8'));
  const include = config.include ?? ['.'];
  const outDir = config.compilerOptions?.outDir ?? 'dist';
  const exclude = new Set(['node_modules', outDir, ...(config.exclude ?? [])].map((p) => path.normalize(p)));
  return { include, exclude, outDir };
}

function walk(root, rel, exclude, files) {
  if (exclude.has(path.normalize(rel)) || path.basename(rel) === 'node_modules') return;
  let entries;
  try {
    entries = readdirSync(path.join(root, rel), { withFileTypes: true });
  } catch (err) {
    // An include that names a file is that file; one that does not exist compiles nothing.
    if (err.code === 'ENOTDIR' && SOURCE.test(rel)) files.push(rel);
    return;
  }
  for (const e of entries) {
    const child = rel === '.' ? e.name : path.join(rel, e.name);
    if (e.isDirectory()) walk(root, child, exclude, files);
    else if (e.isFile() && SOURCE.test(e.name) && !exclude.has(path.normalize(child))) files.push(child);
  }
}

/** Every source under the include folders, sorted, with the hash of each file's content. */
export function fingerprint(root) {
  const { include, exclude, outDir } = readProject(root);
  const files = [];
  // A glob (`src/**/*.ts`) is walked from the folder before its first wildcard: every source
  // under it counts, a superset of what tsc reads, so nothing it reads can change unseen.
  for (const inc of include) {
    const parts = inc.split(/[\\/]/);
    const wild = parts.findIndex((p) => /[*?]/.test(p));
    walk(root, wild < 0 ? inc : parts.slice(0, wild).join('/') || '.', exclude, files);
  }
  const sources = {};
  for (const f of [...new Set(files)].sort())
    sources[f.split(path.sep).join('/')] = hashFile(path.join(root, f));
  const inputs = {};
  for (const f of EXTRA_INPUTS)
    inputs[f] = existsSync(path.join(root, f)) ? hashFile(path.join(root, f)) : null;
  return { outDir, sources, inputs };
}

function hashFile(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
}

/** `dist/x/y.js` for `x/y.ts`; undefined for what emits nothing of its own (.d.ts, .json). */
function outputOf(source) {
  if (/\.d\.[mc]?ts$/.test(source) || source.endsWith('.json')) return undefined;
  return source
    .replace(/\.(ts|tsx)$/, '.js')
    .replace(/\.mts$/, '.mjs')
    .replace(/\.cts$/, '.cjs');
}

function readStamp(root, outDir) {
  try {
    return JSON.parse(readFileSync(path.join(root, outDir, STAMP), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Why dist/ must be rebuilt, or undefined when it is current. */
export function staleReason(root, current = fingerprint(root)) {
  const stamp = readStamp(root, current.outDir);
  if (!stamp) return `no build stamp in ${current.outDir}/`;
  for (const f of EXTRA_INPUTS) if (stamp.inputs?.[f] !== current.inputs[f]) return `${f} changed`;
  for (const [f, hash] of Object.entries(current.sources)) {
    if (stamp.sources?.[f] === undefined) return `${f} is new`;
    if (stamp.sources[f] !== hash) return `${f} changed`;
  }
  for (const f of Object.keys(stamp.sources ?? {})) if (!(f in current.sources)) return `${f} was deleted`;
  for (const f of Object.keys(current.sources)) {
    const out = outputOf(f);
    if (out && !existsSync(path.join(root, current.outDir, out)))
      return `${current.outDir}/${out} is missing`;
  }
  return undefined;
}

/** Builds when stale; returns tsc's exit status (0 when nothing had to be done). */
export function build(root, { force = false, quiet = false, log = console.error } = {}) {
  const current = fingerprint(root);
  const reason = force ? 'forced' : staleReason(root, current);
  if (!reason) {
    if (!quiet) log(`build: ${current.outDir}/ is current (${Object.keys(current.sources).length} sources)`);
    return 0;
  }
  const previous = readStamp(root, current.outDir);
  const outDir = path.join(root, current.outDir);
  // A deleted output with its build info still there would not be emitted again: start clean.
  if (force || reason.endsWith('is missing')) rmSync(path.join(outDir, BUILD_INFO), { force: true });
  for (const f of Object.keys(previous?.sources ?? {})) {
    const out = f in current.sources ? undefined : outputOf(f);
    if (out) for (const file of [out, `${out}.map`]) rmSync(path.join(outDir, file), { force: true });
  }
  rmSync(path.join(outDir, STAMP), { force: true });
  if (!quiet) log(`build: ${reason}: running tsc`);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const args = [tsc, '-p', path.join(root, 'tsconfig.json'), '--incremental'];
  args.push('--tsBuildInfoFile', path.join(outDir, BUILD_INFO));
  // tsc's messages go to stderr: `sluice --json` builds first and its stdout must stay JSON.
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 2, 2] });
  if (result.status !== 0) return result.status ?? 1;
  // Hashed before tsc ran: a file edited during the build makes the next start build again.
  writeFileSync(path.join(outDir, STAMP), `${JSON.stringify(current)}\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--project');
  const root = path.resolve(
    at >= 0 ? argv[at + 1] : path.join(path.dirname(fileURLToPath(import.meta.url)), '..'),
  );
  if (argv.includes('--check')) {
    const reason = staleReason(root);
    console.error(reason ? `build needed: ${reason}` : 'build: current');
    process.exit(reason ? 1 : 0);
  }
  process.exit(build(root, { force: argv.includes('--force'), quiet: argv.includes('--quiet') }));
}
