/**
 * Memory of devhost under concurrent chunked uploads: N clients (default 6) each stream a CSV of
 * UPLOAD_MB (default 95) MB to `POST /api/pipelines/{name}/runs` with no Content-Length
 * (Transfer-Encoding: chunked), all at once. Samples the resident memory of devhost's process (and
 * of its whole process tree, which includes the Functions worker and the emulators) every 50 ms
 * and prints the idle and peak figures with the answers the clients got.
 *
 *   npm run build && node dist/bench/http/uploads.js     (UPLOADS=6 UPLOAD_MB=95)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, startDevhost } from '../../test/support/devhost';

const uploads = Number(process.env.UPLOADS ?? 6);
const megabytes = Number(process.env.UPLOAD_MB ?? 95);

/** Resident set size in bytes of one process, 0 when it is gone. */
function rss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status);
    return kb ? Number(kb[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The pid and every descendant of it. */
function tree(pid: number): number[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  const children = new Map<number, number[]>();
  for (const line of out.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number) as [number, number];
    children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]!) ?? []));
  return all;
}

/** A CSV of the wages columns, produced in 64 KB chunks as the server reads it. */
function csvStream(bytes: number, seed: number): ReadableStream<Uint8Array> {
  const header = 'wage,education,experience,age,gender,race,south,union,married,occupation,sector\n';
  let sent = 0;
  let row = seed;
  let first = true;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes) {
        controller.close();
        return;
      }
      let text = first ? header : '';
      first = false;
      while (text.length < 64 * 1024) {
        row++;
        text += `${(5 + (row % 20)).toFixed(2)},${8 + (row % 10)},${row % 40},${18 + (row % 47)},${
          row % 2 ? 'female' : 'male'
        },white,no,no,yes,${row % 3 ? 'office' : 'sales'},other\n`;
      }
      const chunk = Buffer.from(text);
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

async function main(): Promise<void> {
  const host = await startDevhost({
    app: '.',
    readyTimeoutMs: 120_000,
    env: { INGEST_MAX_BYTES: String(1024 * 1024 * 1024), DURABLE_TASK_HUB: 'UploadBench' },
  });
  host.discardOutput();
  const pid = host.proc.pid!;
  try {
    const definition = JSON.parse(
      readFileSync(path.join(repoRoot, 'examples', 'pipelines', 'wages.json'), 'utf8'),
    ) as Record<string, unknown>;
    const put = await fetch(`${host.url}/api/pipelines/uploadbench`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...definition, name: 'uploadbench', modelName: 'uploadbench' }),
    });
    if (put.status !== 201) throw new Error(`PUT pipeline answered ${put.status}: ${await put.text()}`);
    await new Promise((r) => setTimeout(r, 2000));
    const idleHost = rss(pid);
    const idleTree = tree(pid).reduce((s, p) => s + rss(p), 0);

    let peakHost = idleHost;
    let peakTree = idleTree;
    let pids = tree(pid);
    let ticks = 0;
    const sampler = setInterval(() => {
      if (++ticks % 20 === 0) pids = tree(pid);
      peakHost = Math.max(peakHost, rss(pid));
      peakTree = Math.max(
        peakTree,
        pids.reduce((s, p) => s + rss(p), 0),
      );
    }, 50);
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: uploads }, async (_, i) => {
        const res = await fetch(`${host.url}/api/pipelines/uploadbench/runs`, {
          method: 'POST',
          headers: { 'content-type': 'text/csv' },
          body: csvStream(megabytes * 1024 * 1024, i * 1_000_000),
          duplex: 'half',
        } as RequestInit);
        const body = await res.text();
        return `${res.status}${res.headers.get('retry-after') ? ` (Retry-After ${res.headers.get('retry-after')})` : ''}${
          res.status >= 400 ? ` ${body.slice(0, 120)}` : ''
        }`;
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
    console.log(`bench:uploads  ${uploads} concurrent chunked uploads of ${megabytes} MB to startRun`);
    console.log(`devhost process RSS: idle ${mb(idleHost)}, peak ${mb(peakHost)}`);
    console.log(`devhost process tree RSS (worker, emulators): idle ${mb(idleTree)}, peak ${mb(peakTree)}`);
    console.log(`answers after ${seconds.toFixed(1)} s: ${answers.join('; ')}`);
  } finally {
    await host.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
