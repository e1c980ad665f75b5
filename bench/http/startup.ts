/**
 * Start-up figures for bench:http: `npm start` from the command to devhost's ready line, the first
 * time on a new data folder (the emulators create their state) and again on the same folder (a
 * warm start, what a developer sees every day), both with dist/ current (scripts/build.mjs decides
 * that in milliseconds); and `sluice --help` through the bin and through npx.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../test/support/devhost';

export interface StartupFigures {
  firstStartMs: number;
  warmStartMs: number;
  helpBinMs: number;
  helpNpxMs: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs `npm start` until devhost prints its ready line, then stops it; resolves with the time taken. */
async function npmStartToReady(dataDir: string): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  // Its own process group, so stopping it stops npm, its shell and devhost together.
  const proc = spawn('npm', ['start', '--', '--port', String(port), '--data-dir', dataDir], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  try {
    return await new Promise<number>((resolve, reject) => {
      const collect = (chunk: string) => {
        out += chunk;
        if (out.includes('devhost ready: ')) resolve(performance.now() - t0);
      };
      proc.stdout?.setEncoding('utf8').on('data', collect);
      proc.stderr?.setEncoding('utf8').on('data', collect);
      proc.once('exit', (code) => reject(new Error(`npm start exited with ${String(code)}:\n${out}`)));
    });
  } finally {
    const exited = new Promise((r) => proc.once('exit', r));
    if (proc.pid !== undefined && proc.exitCode === null) process.kill(-proc.pid, 'SIGTERM');
    await exited;
  }
}

function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.includes('Usage: sluice'))
    throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return performance.now() - t0;
}

export async function measureStartup(): Promise<StartupFigures> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-start-'));
  try {
    const firstStartMs = await npmStartToReady(dataDir);
    const warmStartMs = await npmStartToReady(dataDir);
    const helpBinMs = timed(process.execPath, [path.join(repoRoot, 'scripts', 'sluice.mjs'), '--help']);
    const helpNpxMs = timed('npx', ['sluice', '--help']);
    return { firstStartMs, warmStartMs, helpBinMs, helpNpxMs };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

export function formatStartup(f: StartupFigures): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return (
    `start-up  npm start to "devhost ready" (dist current): first start on a new data folder ${s(f.firstStartMs)}, ` +
    `warm ${s(f.warmStartMs)}; sluice --help ${Math.round(f.helpBinMs)} ms (bin), ${s(f.helpNpxMs)} (npx)`
  );
}
