/**
 * devhost's memory under concurrent large uploads (issue 13: six concurrent 95 MB chunked uploads took
 * devhost from 290 MB to 2.2 GB). Sends BENCH_UPLOADS (6) chunked uploads of BENCH_UPLOAD_MB (95) at once
 * to a streaming function (test/fixtures/stream, `enableHttpStream`, counts and discards) and to a
 * buffering one (test/fixtures/basic `upload`), and prints devhost's resident memory before and at peak
 * (VmHWM) and what each upload was answered.
 *
 *   npm run build && node dist/bench/http/bodies.js
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { repoRoot, startDevhost } from '../../test/support/devhost';

const uploads = Number(process.env.BENCH_UPLOADS ?? 6);
const uploadMb = Number(process.env.BENCH_UPLOAD_MB ?? 95);
const chunk = Buffer.alloc(64 * 1024, 7);

function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** One chunked upload of `bytes`, written as fast as the connection takes it; resolves with the status. */
function upload(url: string, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } });
    req.once('response', (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', () => resolve(0));
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

async function measure(label: string, app: string, route: string): Promise<void> {
  const host = await startDevhost({ app: path.join(repoRoot, app), services: false });
  try {
    host.discardOutput();
    const pid = host.proc.pid!;
    const before = memoryOf(pid);
    const started = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: uploads }, () => upload(`${host.url}${route}`, uploadMb * 1024 * 1024)),
    );
    const seconds = (performance.now() - started) / 1000;
    const after = memoryOf(pid);
    const counts = new Map<number, number>();
    for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
    const answered = [...counts].map(([s, n]) => `${n}×${s}`).join(' ');
    console.log(
      `${label.padEnd(34)} RSS before ${before.rssMb.toFixed(0).padStart(5)} MB, peak ${after.peakMb
        .toFixed(0)
        .padStart(
          5,
        )} MB (+${(after.peakMb - before.rssMb).toFixed(0)} MB), ${seconds.toFixed(1)} s, answers ${answered}`,
    );
  } finally {
    await host.stop();
  }
}

async function main(): Promise<void> {
  console.log(`${uploads} concurrent chunked uploads of ${uploadMb} MB to devhost`);
  await measure('streaming function (enableHttpStream)', 'test/fixtures/stream', '/api/count/bench');
  await measure('buffering function', 'test/fixtures/basic', '/api/upload');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
