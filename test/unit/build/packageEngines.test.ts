import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines?: unknown;
  bin?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

/**
 * npm checks `engines` against the Node that runs npm (the system's), not the project's own Node 22
 * (the `node` dev dependency, first on PATH for npm scripts and npx) that runs everything: a root
 * `engines` made `npm ci` warn and every `npx sluice` warn again (EBADENGINE).
 */
describe('the project runs on its own Node 22 and npm is not asked to check the system Node', () => {
  it('declares no engines of its own and pins Node 22 as a dev dependency', () => {
    expect(pkg.engines).toBeUndefined();
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { engines?: unknown }>;
    };
    expect(lock.packages['']?.engines).toBeUndefined();
    expect(pkg.devDependencies?.node).toMatch(/^22\.\d+\.\d+$/);
    // A version manager (nvm, fnm) runs npm itself on the same Node, so the install is quiet too.
    expect(readFileSync(path.join(root, '.nvmrc'), 'utf8').trim()).toBe(pkg.devDependencies?.node);
  });

  it('links sluice to the launcher that builds when needed and refuses an older Node in one line', () => {
    expect(pkg.bin).toEqual({ sluice: 'scripts/sluice.mjs' });
    const launcher = path.join(root, 'scripts', 'sluice.mjs');
    accessSync(launcher, constants.X_OK);
    const text = readFileSync(launcher, 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(text).toContain('needs Node.js 22 or later');
  });
});
