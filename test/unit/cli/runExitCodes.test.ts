/**
 * `sluice run --wait` ends with a documented exit code per outcome, so a CI step can gate on a run:
 * the table itself (every stop reason has its code, no two outcomes share one), and the real
 * process (dist/cli/sluice.js, as `npx sluice` runs it) exiting with it against an HTTP fake of the
 * two endpoints it calls.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { commandHelp, RUN_EXIT_CODES, runExitCode } from '../../../cli/sluice';
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

  it('maps every stop reason the server knows to a stopped code (10–19) or canceled, never to 0, 1 or 2', () => {
    for (const reason of stopReasonSchema.options) {
      const code = runExitCode({ status: 'stopped', stopReason: reason });
      expect([...Array.from({ length: 10 }, (_, i) => 10 + i), 21]).toContain(code);
    }
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
