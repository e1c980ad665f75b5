import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runningDevhostUrl } from '../../../cli/localSluice';

/** The demo uses a running `npm start` on the port it was given, not only on 7071. */
describe('runningDevhostUrl finds the devhost of a data folder', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-running-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('answers the URL of a live devhost on another port', () => {
    writeFileSync(
      path.join(dir, 'devhost.json'),
      JSON.stringify({ url: 'http://localhost:7072', pid: process.pid }),
    );
    expect(runningDevhostUrl(dir)).toBe('http://localhost:7072');
  });

  it('ignores a file whose process is gone, a broken file and no file', () => {
    writeFileSync(
      path.join(dir, 'devhost.json'),
      JSON.stringify({ url: 'http://localhost:7072', pid: 2 ** 22 + 1 }),
    );
    expect(runningDevhostUrl(dir)).toBeUndefined();
    writeFileSync(path.join(dir, 'devhost.json'), '{');
    expect(runningDevhostUrl(dir)).toBeUndefined();
    rmSync(path.join(dir, 'devhost.json'));
    expect(runningDevhostUrl(dir)).toBeUndefined();
  });
});
