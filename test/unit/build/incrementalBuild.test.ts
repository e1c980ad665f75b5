/**
 * scripts/build.mjs, which `npm start`, `npm run demo` and the `sluice` bin run first: a dist/ that
 * is current is left alone (no tsc), and anything tsc reads that changed builds again. Run on a tiny
 * project of its own; what is asserted is what was built, never how long it took.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const script = path.resolve(__dirname, '../../../scripts/build.mjs');
let dir: string;

function build(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [script, '--project', dir, ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}
const write = (file: string, text: string) => writeFileSync(path.join(dir, file), text);
const emitted = (file: string) => readFileSync(path.join(dir, 'dist', file), 'utf8');

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-build-'));
  mkdirSync(path.join(dir, 'src'));
  write(
    'tsconfig.json',
    JSON.stringify({
      compilerOptions: {
        outDir: 'dist',
        rootDir: '.',
        module: 'commonjs',
        target: 'es2022',
        strict: true,
        types: [],
      },
      include: ['src'],
    }),
  );
  write('src/a.ts', "import { b } from './b';\nexport const a = 'first ' + b;\n");
  write('src/b.ts', "export const b = 'b';\n");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('a current dist/ is not built again; a changed source is', () => {
  expect(build()).toEqual({ status: 0, stderr: 'build: no build stamp in dist/: running tsc\n' });
  expect(emitted('src/a.js')).toContain("'first '");
  expect(build()).toEqual({ status: 0, stderr: 'build: dist/ is current (2 sources)\n' });

  write('src/a.ts', "import { b } from './b';\nexport const a = 'second ' + b;\n");
  expect(build('--check')).toEqual({ status: 1, stderr: 'build needed: src/a.ts changed\n' });
  expect(build()).toEqual({ status: 0, stderr: 'build: src/a.ts changed: running tsc\n' });
  expect(emitted('src/a.js')).toContain("'second '");
  expect(build('--check').status).toBe(0);
});

test('a new, a deleted or a config change builds; a deleted source takes its output with it', () => {
  build();
  write('src/c.ts', 'export const c = 1;\n');
  expect(build().stderr).toBe('build: src/c.ts is new: running tsc\n');
  expect(existsSync(path.join(dir, 'dist/src/c.js'))).toBe(true);

  rmSync(path.join(dir, 'src/c.ts'));
  expect(build().stderr).toBe('build: src/c.ts was deleted: running tsc\n');
  expect(existsSync(path.join(dir, 'dist/src/c.js'))).toBe(false);

  const config = JSON.parse(readFileSync(path.join(dir, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: Record<string, unknown>;
  };
  config.compilerOptions.target = 'es2020';
  write('tsconfig.json', JSON.stringify(config));
  expect(build().stderr).toBe('build: tsconfig.json changed: running tsc\n');
});

test('a deleted output is emitted again, though tsc’s incremental build info says nothing changed', () => {
  build();
  rmSync(path.join(dir, 'dist/src/b.js'));
  expect(build().stderr).toBe('build: dist/src/b.js is missing: running tsc\n');
  expect(emitted('src/b.js')).toContain("'b'");
});

test('an include that is a glob or a single file is watched too', () => {
  write(
    'tsconfig.json',
    JSON.stringify({
      compilerOptions: { outDir: 'dist', rootDir: '.', module: 'commonjs', target: 'es2022', types: [] },
      include: ['src/**/*.ts', 'extra.ts'],
    }),
  );
  write('extra.ts', 'export const extra = 1;\n');
  expect(build().status).toBe(0);
  expect(build('--check').status).toBe(0);
  write('extra.ts', 'export const extra = 2;\n');
  expect(build('--check').stderr).toBe('build needed: extra.ts changed\n');
  build();
  write('src/b.ts', "export const b = 'c';\n");
  expect(build('--check').stderr).toBe('build needed: src/b.ts changed\n');
});

test('a failed build leaves no stamp, so the next start builds again', () => {
  build();
  write('src/b.ts', 'export const b: number = "not a number";\n');
  const failed = build();
  expect(failed.status).not.toBe(0);
  expect(failed.stderr).toMatch(/src\/b\.ts.*Type 'string' is not assignable to type 'number'/);
  expect(build('--check')).toEqual({ status: 1, stderr: 'build needed: no build stamp in dist/\n' });
});
