/**
 * Loads the app's entry points the way the Node worker does (durable-host-spec §2.1): `package.json`
 * `main` is a glob evaluated in the app folder; each match is `require`d, or `import`ed when it is ESM.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { glob, isDynamicPattern } from 'tinyglobby';

/** An entry point that could not be found or threw while loading; `file` names it. */
export class AppLoadError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppLoadError';
  }
}

interface PackageJson {
  main?: unknown;
  type?: unknown;
}

function readPackageJson(appDir: string): PackageJson {
  const file = path.join(appDir, 'package.json');
  if (!existsSync(file))
    throw new AppLoadError(file, `${file} does not exist: is ${appDir} a Functions app folder?`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
  } catch (err) {
    throw new AppLoadError(file, `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** The entry-point files `main` matches, absolute, in a stable order. */
export async function resolveEntryPoints(appDir: string): Promise<string[]> {
  const pkgFile = path.join(appDir, 'package.json');
  const pkg = readPackageJson(appDir);
  if (typeof pkg.main !== 'string' || pkg.main.trim() === '') {
    throw new AppLoadError(
      pkgFile,
      `${pkgFile} has no "main": set it to the glob of the compiled function files`,
    );
  }
  const pattern = pkg.main.trim();
  if (!isDynamicPattern(pattern)) {
    const file = path.resolve(appDir, pattern);
    if (!existsSync(file)) throw new AppLoadError(file, `File does not exist: ${file} (package.json "main")`);
    return [file];
  }
  const files = await glob(pattern, { cwd: appDir, absolute: true, onlyFiles: true });
  if (files.length === 0) {
    throw new AppLoadError(
      pkgFile,
      `Found zero files matching the supplied pattern "${pattern}" (package.json "main"); is the app built?`,
    );
  }
  return files.sort();
}

function isEsm(file: string, pkg: PackageJson): boolean {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  return pkg.type === 'module';
}

/**
 * Loads every entry point in order. The core shim must already be installed. Throws `AppLoadError`
 * naming the first file that fails.
 */
export async function loadEntryPoints(appDir: string): Promise<string[]> {
  const pkg = readPackageJson(appDir);
  const files = await resolveEntryPoints(appDir);
  for (const file of files) {
    try {
      if (isEsm(file, pkg)) await import(pathToFileURL(file).href);
      // The worker loads CommonJS entry points with require, so module caching and errors match.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      else require(file);
    } catch (err) {
      const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
      throw new AppLoadError(file, `Failed to load ${file}: ${detail}`, { cause: err });
    }
  }
  return files;
}
