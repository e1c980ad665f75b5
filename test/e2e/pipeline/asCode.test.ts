/**
 * Pipelines as code and `run --wait` exit codes on the whole app under devhost, as a CI job would
 * use them: `sluice` (the built CLI, a real process) plans and applies a folder, then gates on a
 * run's outcome by its exit code. Needs `dist/`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../support/devhost';
import type { PipelineHarness } from './harness';
import { WAGES_CSV, startPipelineHarness, testPipeline } from './harness';

jest.setTimeout(240_000);

const SLUICE = path.join(repoRoot, 'dist', 'cli', 'sluice.js');

function sluice(h: PipelineHarness, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SLUICE, ...args, '--url', h.url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('pipelines as code and run exit codes on devhost', () => {
  let h: PipelineHarness;
  let dir: string;
  beforeAll(async () => {
    h = await startPipelineHarness();
    dir = mkdtempSync(path.join(tmpdir(), 'sluice-e2e-as-code-'));
  });
  afterAll(async () => {
    await h?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('plan shows the change, apply makes it, and a run that cannot pass exits 11', async () => {
    // A pipeline whose evaluation cannot pass: r2 of at least 0.99 on the wages data.
    const def = testPipeline('e2e-as-code');
    const evaluation = { ...(def.evaluation as Record<string, unknown>), threshold: 0.99 };
    writeFileSync(path.join(dir, 'e2e-as-code.json'), JSON.stringify({ ...def, evaluation }, null, 2));

    let r = await sluice(h, 'pipelines', 'plan', dir, '--detailed-exitcode');
    expect(r).toMatchObject({ code: 2, out: expect.stringContaining('+ e2e-as-code') });
    r = await sluice(h, 'pipelines', 'apply', dir);
    expect(r).toMatchObject({
      code: 0,
      out: expect.stringContaining('✔ e2e-as-code: created, now version 1'),
    });
    r = await sluice(h, 'pipelines', 'plan', dir, '--detailed-exitcode');
    expect(r).toMatchObject({ code: 0, out: expect.stringContaining('= e2e-as-code') });

    r = await sluice(h, 'run', 'e2e-as-code', '--data', WAGES_CSV, '--wait');
    expect(r.out).toMatch(/stopped \(evaluation_failed\)/);
    expect(r.code).toBe(11);
  });

  it('a PUT naming a stale version in If-Match is refused 412 and the newer version kept', async () => {
    const def = testPipeline('e2e-as-code-race');
    writeFileSync(path.join(dir, 'e2e-as-code-race.json'), JSON.stringify(def));
    expect((await sluice(h, 'pipelines', 'apply', dir)).code).toBe(0);
    // Someone changes it through the API; then the folder is applied with an older view of it.
    await h.put({ ...def, description: 'changed by hand' });
    const res = await h.api(
      'PUT',
      '/api/pipelines/e2e-as-code-race',
      { ...def, description: 'stale' },
      {
        'if-match': '"1"',
      },
    );
    expect(res.status).toBe(412);
    expect(await res.json()).toMatchObject({ code: 'pipeline_version_mismatch', field: 'If-Match' });
    const got = await h.api('GET', '/api/pipelines/e2e-as-code-race');
    expect(got.headers.get('etag')).toBe('"2"');
    expect(((await got.json()) as { definition: { description: string } }).definition.description).toBe(
      'changed by hand',
    );
  });
});
