// The azd prepackage hook stages the Function App package: compiled code without tests and
// benchmarks, the files the host reads, and (in a real deploy) production node_modules. Run here
// as a real process on a small project folder, without the build or the registry.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INFRA, ROOT } from './helpers';

const SCRIPT = join(INFRA, 'hooks/stage-package.mjs');

function project(): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-stage-'));
  const write = (rel: string, text = '{}') => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  for (const f of ['host.json', 'package.json', 'package-lock.json']) write(f);
  write('.funcignore', 'local.settings.json\n');
  write('local.settings.json', '{"Values":{"SECRET":"x"}}');
  write('src.ts', 'export {}');
  write('dist/functions/runs.js', '');
  write('dist/lib/config.js', '');
  write('dist/lib/resources.json');
  write('dist/worker/trainingJob.js', '');
  write('dist/test/unit/x.test.js', '');
  write('dist/bench/scale/scale.js', '');
  write('dist/devhost/cli.js', '');
  write('dist/cli/sluice.js', '');
  write('dist/.build-stamp.json');
  write('node_modules/typescript/package.json');
  return root;
}

const stage = (root: string, out: string, ...extra: string[]) =>
  spawnSync(process.execPath, [SCRIPT, '--root', root, '--out', out, '--no-build', ...extra], {
    encoding: 'utf8',
  });

describe('infra/hooks/stage-package.mjs', () => {
  it('stages dist (no tests, benchmarks or build state), host.json, package files and .funcignore', () => {
    const root = project();
    try {
      const out = join(root, '.deploy/api');
      const result = stage(root, out, '--no-install');
      expect([result.status, result.stderr]).toEqual([0, '']);
      expect(result.stdout).toMatch(/^staged \.deploy\/api: \d+\.\d MB$/m);
      expect(readdirSync(out).sort()).toEqual([
        '.funcignore',
        'dist',
        'host.json',
        'package-lock.json',
        'package.json',
      ]);
      expect(readdirSync(join(out, 'dist')).sort()).toEqual(['functions', 'lib', 'worker']);
      expect(existsSync(join(out, 'dist/lib/resources.json'))).toBe(true);
      // Nothing of the local dev install or local settings.
      expect(existsSync(join(out, 'node_modules'))).toBe(false);
      expect(existsSync(join(out, 'local.settings.json'))).toBe(false);
      // Staging again starts from an empty folder.
      writeFileSync(join(out, 'stale.txt'), 'x');
      expect(stage(root, out, '--no-install').status).toBe(0);
      expect(existsSync(join(out, 'stale.txt'))).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('removes the native binaries of platforms other than Linux x64 (Flex Consumption)', () => {
    const root = mkdtempSync(join(tmpdir(), 'sluice-prune-'));
    try {
      const bin = join(root, 'node_modules/onnxruntime-node/bin/napi-v6');
      for (const p of ['darwin/arm64', 'win32/x64', 'win32/arm64', 'linux/x64', 'linux/arm64']) {
        mkdirSync(join(bin, p), { recursive: true });
        writeFileSync(join(bin, p, 'onnxruntime_binding.node'), 'x');
      }
      const result = spawnSync(process.execPath, [SCRIPT, '--prune-platforms', root], { encoding: 'utf8' });
      expect(result.status).toBe(0);
      expect(readdirSync(bin)).toEqual(['linux']);
      expect(readdirSync(join(bin, 'linux'))).toEqual(['x64']);
      expect(existsSync(join(bin, 'linux/x64/onnxruntime_binding.node'))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses to stage without a build, naming what is missing', () => {
    const root = project();
    try {
      rmSync(join(root, 'dist'), { recursive: true });
      const result = stage(root, join(root, 'out'), '--no-install');
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/dist does not exist: build first/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('package.json: what npm may run at install', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    allowScripts?: Record<string, boolean>;
    devEngines?: { packageManager?: { name?: string; version?: string; onFail?: string } };
  };

  it("denies onnxruntime-node's install script, which downloads CUDA libraries from outside", () => {
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
    // The pinned Node package installs its binary in its own script; it must stay allowed.
    expect(pkg.allowScripts?.node).toBe(true);
  });

  it('stops an npm older than 11.16 (which ignores allowScripts) before it installs anything', () => {
    // npm 11.15 and older run every install script whatever allowScripts says (checked with
    // npm 10.9.9, the npm of Node 22, and 11.15.0: the onnxruntime-node script ran and failed on
    // api.nuget.org); 11.16.0 is the first that honours it.
    expect(pkg.devEngines?.packageManager).toEqual({ name: 'npm', version: '>=11.16.0', onFail: 'error' });
  });
});
