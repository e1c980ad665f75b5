/**
 * `sluice run --wait` ends with a documented exit code per outcome, so a CI step can gate on a run:
 * the table itself (every stop reason has its code, no two outcomes share one), and the real
 * process (dist/cli/sluice.js, as `npx sluice` runs it) exiting with it against an HTTP fake of the
 * two endpoints it calls.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { commandHelp, RUN_EXIT_CODES, runExitCode, STOP_REASONS_SHARING_A_CODE } from '../../../cli/sluice';
import { stopReasonSchema } from '../../../lib/contracts/runDocument';
import { repoRoot } from '../../support/devhost';

const SLUICE = path.join(repoRoot, 'dist', 'cli', 'sluice.js');

describe('the run exit code table', () => {
  it('gives each outcome its own code: 0 succeeded, 10–19 stopped by reason, 20 failed, 21 canceled', () => {
    expect(runExitCode({ status: 'succeeded' })).toBe(0);
    expect(runExitCode({ status: 'failed', stopReason: 'error' })).toBe(20);
    expect(runExitCode({ status: 'canceled' })).toBe(21);
    expect(runExitCode({ status: 'stopped', stopReason: 'canceled' })).toBe(21);
    expect(runExitCode({ status: 'stopped', stopReason: 'validation_failed' })).toBe(10);
    expect(runExitCode({ status: 'stopped', stopReason: 'evaluation_failed' })).toBe(11);
    expect(runExitCode({ status: 'stopped', stopReason: 'approval_rejected' })).toBe(13);
    expect(runExitCode({ status: 'stopped', stopReason: 'approval_timed_out' })).toBe(14);
    expect(runExitCode({ status: 'stopped', stopReason: 'orchestration_terminated' })).toBe(19);
    expect(runExitCode({ status: 'stopped', stopReason: 'a_reason_from_a_newer_server' })).toBe(19);
    expect(runExitCode({ status: 'stopped' })).toBe(19);
  });

  it('maps every stop reason the server knows to a stopped code (10–19, 22 on) or canceled, never to 0, 1 or 2', () => {
    // 10–19 were full when the rollout reasons came: new stopped codes continue after 21.
    const stoppedCodes = [...Array.from({ length: 10 }, (_, i) => 10 + i), 22, 23];
    for (const reason of stopReasonSchema.options) {
      const code = runExitCode({ status: 'stopped', stopReason: reason });
      expect([...stoppedCodes, 21]).toContain(code);
      expect([0, 1, 2, 20]).not.toContain(code);
    }
  });

  it('gives every stop reason of the contract a code of its own, but those documented as sharing', () => {
    const byCode = new Map<number, string[]>();
    for (const reason of stopReasonSchema.options) {
      const code = runExitCode({ status: 'stopped', stopReason: reason });
      byCode.set(code, [...(byCode.get(code) ?? []), reason]);
    }
    const sharing = new Set(Object.keys(STOP_REASONS_SHARING_A_CODE));
    for (const [code, reasons] of byCode) {
      const own = reasons.filter((r) => !sharing.has(r));
      // A reason of its own is alone on its code, and not on a code of a status or of the sharers.
      if (own.length > 0) expect([code, reasons]).toEqual([code, own]);
      expect(own.length).toBeLessThanOrEqual(1);
    }
    for (const [reason, key] of Object.entries(STOP_REASONS_SHARING_A_CODE)) {
      expect(stopReasonSchema.options).toContain(reason);
      expect(runExitCode({ status: 'stopped', stopReason: reason })).toBe(RUN_EXIT_CODES[key]);
    }
    expect(runExitCode({ status: 'stopped', stopReason: 'rollout_rolled_back' })).toBe(22);
    expect(runExitCode({ status: 'stopped', stopReason: 'rollout_aborted' })).toBe(23);
  });

  it('never gives two outcomes one code, and run --help lists them all', () => {
    const codes = Object.values(RUN_EXIT_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    const help = commandHelp('run');
    for (const code of codes) expect(help).toMatch(new RegExp(`^ +${code}  \\S`, 'm'));
  });
});

/** POST /api/pipelines/{p}/runs starts r1; GET /api/runs/r1 answers `doc`. */
async function fakeSluice(doc: Record<string, unknown>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/api/pipelines/wages/runs') {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ runId: 'r1', runUrl: 'http://x/api/runs/r1' }));
      } else if (req.method === 'GET' && req.url === '/api/runs/r1') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(doc));
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function exitCodeOf(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SLUICE, ...args], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? -1));
  });
}

describe('sluice run --wait exits with the run’s outcome (the real process)', () => {
  beforeAll(() => {
    if (!existsSync(SLUICE)) throw new Error(`${SLUICE} is missing: npm run build first`);
  });

  it.each([
    ['succeeded', undefined, 0],
    ['stopped', 'evaluation_failed', 11],
    ['stopped', 'approval_rejected', 13],
    ['failed', 'error', 20],
    ['canceled', 'canceled', 21],
  ])('%s %s → %d', async (status, stopReason, expected) => {
    const doc = {
      id: 'r1',
      pipeline: 'wages',
      status,
      ...(stopReason ? { stopReason } : {}),
      createdAt: '2026-12-05T08:00:00Z',
      steps: [{ name: 'validate', status: 'succeeded' }],
    };
    const { server, url } = await fakeSluice(doc);
    try {
      expect(await exitCodeOf(['run', 'wages', '--blob', 'datasets/x.csv', '--wait', '--url', url])).toBe(
        expected,
      );
    } finally {
      server.close();
    }
  });

  it('exits 2 for a wrong command line and 1 when Sluice cannot be reached', async () => {
    expect(await exitCodeOf(['run', 'wages', '--wait'])).toBe(2);
    expect(
      await exitCodeOf(['run', 'wages', '--blob', 'datasets/x.csv', '--wait', '--url', 'http://127.0.0.1:1']),
    ).toBe(1);
  });
});

/** The bin's exit status for a command line, with stderr kept for the failure message. */
function runBin(file: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe('pipelines plan --detailed-exitcode keeps 2 for "changes": every error is 1 (the real process)', () => {
  beforeAll(() => {
    if (!existsSync(SLUICE)) throw new Error(`${SLUICE} is missing: npm run build first`);
  });

  it.each([
    ['a missing DIR', ['pipelines', 'plan', '--detailed-exitcode']],
    ['an unknown option', ['pipelines', 'plan', 'pipelines/', '--detailed-exitcode', '--bogus']],
    ['an unknown sub-command', ['pipelines', 'plna', 'pipelines/', '--detailed-exitcode']],
    ['an option of another command', ['pipelines', 'plan', 'pipelines/', '--detailed-exitcode', '--wait']],
  ])('%s exits 1', async (_what, args) => {
    const { code, stderr } = await runBin(SLUICE, args);
    expect([code, stderr]).toEqual([1, expect.stringMatching(/^sluice: /)]);
  });

  it('without --detailed-exitcode the same mistakes stay 2', async () => {
    expect((await runBin(SLUICE, ['pipelines', 'plan'])).code).toBe(2);
    expect((await runBin(SLUICE, ['pipelines', 'plan', 'pipelines/', '--bogus'])).code).toBe(2);
  });

  it('the bin (scripts/sluice.mjs) exits 1, not tsc’s status 2, when the build it runs first fails', async () => {
    // A project of its own whose one source does not compile: the real bin and builder copied in,
    // the compiler reached through node_modules as in the repository.
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bin-'));
    try {
      mkdirSync(path.join(dir, 'scripts'));
      mkdirSync(path.join(dir, 'src'));
      for (const f of ['sluice.mjs', 'build.mjs'])
        copyFileSync(path.join(repoRoot, 'scripts', f), path.join(dir, 'scripts', f));
      symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
      writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { outDir: 'dist', strict: true, types: [] }, include: ['src'] }),
      );
      writeFileSync(path.join(dir, 'src', 'bad.ts'), "export const n: number = 'not a number';\n");
      const { code, stderr } = await runBin(path.join(dir, 'scripts', 'sluice.mjs'), [
        'pipelines',
        'plan',
        'pipelines/',
        '--detailed-exitcode',
      ]);
      expect([code, stderr]).toEqual([1, expect.stringMatching(/building dist\/ first/)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
