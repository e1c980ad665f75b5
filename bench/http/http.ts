/**
 * HTTP throughput of devhost: a trivial HTTP function (bench/http/app) through devhost, next to a bare
 * node:http server answering the same bytes, both in their own process, measured in the same run by
 * autocannon on loopback. Prints requests/s, p50/p99 latency and the ratios, after the start-up
 * figures (bench/http/startup.ts: `npm start` to ready, first and warm, and `sluice --help`).
 *
 *   npm run bench:http                        (BENCH_SECONDS=5 BENCH_CONNECTIONS=20 by default)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot, startDevhost } from '../../test/support/devhost';
import { autocannon, type AutocannonResult } from '../support/autocannon';
import { formatStartup, measureStartup } from './startup';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 20);
const warmupSeconds = 1;

const bareServerSource = `
const http = require('node:http');
const body = JSON.stringify({ hello: 'world' });
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
});
server.listen(0, () => console.log('bare ready ' + server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

function startBare(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['-e', bareServerSource], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /bare ready (\d+)/.exec(out);
      if (match) resolve({ url: `http://127.0.0.1:${match[1]}/api/hello`, proc });
    });
    proc.once('exit', (code) => reject(new Error(`bare server exited with ${String(code)}`)));
  });
}

async function measure(url: string): Promise<AutocannonResult> {
  await autocannon({ url, connections, duration: warmupSeconds });
  return autocannon({ url, connections, duration: seconds });
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  // First, on an idle machine: the start-up figures.
  const startup = await measureStartup();
  const bare = await startBare();
  const devhost = await startDevhost({ app: path.join(repoRoot, 'bench/http/app') });
  try {
    const devhostUrl = `http://127.0.0.1:${devhost.port}/api/hello`;
    const check = await fetch(devhostUrl);
    if (check.status !== 200) throw new Error(`devhost answered ${check.status}`);

    // devhost still writes its per-invocation log line (part of its cost); this process drains it unread.
    devhost.discardOutput();
    const bareResult = await measure(bare.url);
    const devhostResult = await measure(devhostUrl);

    const rows: [string, AutocannonResult][] = [
      ['bare node:http', bareResult],
      ['devhost', devhostResult],
    ];
    console.log(
      `bench:http  ${connections} connections, ${seconds}s each after ${warmupSeconds}s warm-up, loopback`,
    );
    console.log(
      `${'target'.padEnd(16)}${'req/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}`,
    );
    for (const [name, r] of rows) {
      const errors = r.errors + r.timeouts + r.non2xx;
      console.log(
        `${name.padEnd(16)}${fmt(r.requests.average).padStart(10)}${fmt(r.latency.p50, 2).padStart(9)}${fmt(r.latency.p99, 2).padStart(9)}${String(errors).padStart(8)}`,
      );
    }
    const ratio = (a: number, b: number): string => (b === 0 ? 'n/a' : `${fmt(a / b, 2)}x`);
    console.log(
      `devhost / bare: req/s ${ratio(devhostResult.requests.average, bareResult.requests.average)}, ` +
        `p50 ${ratio(devhostResult.latency.p50, bareResult.latency.p50)}, p99 ${ratio(devhostResult.latency.p99, bareResult.latency.p99)}`,
    );
    console.log(formatStartup(startup));
  } finally {
    await devhost.stop();
    bare.proc.kill('SIGTERM');
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
