/**
 * The app serves its API under /api/ and (issue 18) the console at the root, so host.json's route
 * prefix is empty and every API function spells `api/` in its own route. A route added without it
 * would silently land at the root, next to the console's pages.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

describe('HTTP routes', () => {
  it('host.json has an empty route prefix', () => {
    const host = JSON.parse(readFileSync(join(root, 'host.json'), 'utf8')) as {
      extensions: { http: { routePrefix: string } };
    };
    expect(host.extensions.http.routePrefix).toBe('');
  });

  it('every API function route starts with api/ (console pages are the only exception)', () => {
    const routes: { file: string; route: string }[] = [];
    for (const file of readdirSync(join(root, 'functions')).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(root, 'functions', file), 'utf8');
      for (const m of text.matchAll(/route:\s*'([^']*)'/g)) routes.push({ file, route: m[1]! });
    }
    expect(routes.length).toBeGreaterThanOrEqual(20);
    const outside = routes.filter((r) => !r.route.startsWith('api/') && !/^console/i.test(r.file));
    expect(outside).toEqual([]);
  });
});
