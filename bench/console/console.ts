/**
 * The console's server time and page weight with 10,000 runs in devhost's Cosmos DB emulator
 * (issue 18: p95 ≤ 300 ms on devhost, ≤ 100 KB a page without images). One real pipeline run
 * gives the Run page its reports, job files and approval; 10,000 more run documents (every step
 * with outputs, as real ones) are written straight into the emulator. Then each page is fetched
 * sequentially on loopback (the round trip is the server's time plus a loopback hop) and the
 * figures are printed.
 *
 *   npm run bench:console           (BENCH_RUNS=10000 BENCH_REQUESTS=100 by default)
 */
import { gzipSync } from 'node:zlib';
import { COSMOS_EMULATOR_KEY } from '../../devhost/services/wellKnown';
import type { RunDocument } from '../../lib/contracts/runDocument';
import { newRunDocument } from '../../lib/runs/document';
import { RunStore } from '../../lib/runs/store';
import { cosmosStoreOn } from '../../test/support/emulators';
import { freePorts, startPipelineHarness, testPipeline } from '../../test/e2e/pipeline/harness';

const RUNS = Number(process.env.BENCH_RUNS ?? 10_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 100);
const PIPELINES = ['bench-a', 'bench-b', 'bench-c', 'bench-d'];
const STATUSES = ['succeeded', 'succeeded', 'succeeded', 'stopped', 'failed', 'canceled'] as const;

function syntheticRun(i: number, start: number): RunDocument {
  const created = new Date(start - i * 60_000);
  const at = (s: number) => new Date(created.getTime() + s * 1000).toISOString();
  const doc = newRunDocument({
    id: `bench-${String(i).padStart(6, '0')}`,
    pipeline: PIPELINES[i % PIPELINES.length]!,
    pipelineVersion: 1 + (i % 3),
    instanceId: `bench-${i}`,
    trigger: { kind: i % 5 === 0 ? 'timer' : 'http', by: 'bench@example.com' },
    source: { kind: 'blob', uri: `http://127.0.0.1/devstoreaccount1/datasets/bench/${i}.csv` },
    at: created.toISOString(),
  });
  const status = STATUSES[i % STATUSES.length]!;
  const ok = status === 'succeeded';
  return {
    ...doc,
    status,
    ...(status === 'stopped' ? { stopReason: 'validation_failed', reason: 'wage drifted' } : {}),
    ...(status === 'failed' ? { stopReason: 'training_failed', reason: 'the job failed' } : {}),
    ...(status === 'canceled' ? { stopReason: 'canceled', reason: 'canceled by ops' } : {}),
    endedAt: at(600),
    updatedAt: at(600),
    steps: doc.steps.map((s, k) => ({
      ...s,
      status: ok || k < 2 ? 'succeeded' : 'canceled',
      startedAt: at(k * 100),
      endedAt: at(k * 100 + 90),
      outputs: {
        reportUri: `http://127.0.0.1/devstoreaccount1/reports/${i}/${s.name}.json`,
        rows: 534,
        columns: 11,
      },
    })),
    metrics: { rmse: 4.1 + (i % 7) / 10, mae: 3.2 },
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function time(url: string): Promise<{ p50: number; p95: number; max: number; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    const body = await res.text();
    ms.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${body.slice(0, 300)}`);
    bytes = body.length;
  }
  ms.sort((a, b) => a - b);
  return { p50: quantile(ms, 0.5), p95: quantile(ms, 0.95), max: ms[ms.length - 1]!, bytes };
}

async function weight(base: string, path: string): Promise<{ html: number; assets: number; gzip: number }> {
  const html = await (await fetch(`${base}${path}`)).text();
  const assets = [...html.matchAll(/(?:href|src)="(\/console\/assets\/[^"]+)"/g)].map((m) =>
    m[1]!.replace(/&amp;/g, '&'),
  );
  let assetBytes = 0;
  let gz = gzipSync(html).length;
  for (const a of assets) {
    const text = await (await fetch(`${base}${a}`)).text();
    assetBytes += Buffer.byteLength(text);
    gz += gzipSync(text).length;
  }
  return { html: Buffer.byteLength(html), assets: assetBytes, gzip: gz };
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
const msf = (n: number) => `${n.toFixed(1)} ms`;

async function main(): Promise<void> {
  const ports = await freePorts();
  const h = await startPipelineHarness({ ports });
  h.host.discardOutput();
  try {
    await h.put(testPipeline('bench-real'));
    const real = await h.start('bench-real');
    await h.waitFor(real, 'approval', (r) => r.status === 'waiting_for_approval');
    await h.decide(real, 'approve', 'bench');
    await h.finished(real);

    const cosmos = cosmosStoreOn({ endpoint: `http://127.0.0.1:${ports.cosmos}/`, key: COSMOS_EMULATOR_KEY });
    const runs = new RunStore(cosmos);
    const start = Date.now() - 3_600_000;
    const t0 = performance.now();
    for (let i = 0; i < RUNS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, RUNS - i) }, (_, k) => runs.create(syntheticRun(i + k, start))),
      );
    }
    console.log(`wrote ${RUNS} run documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const deep = await runs.page({}, 5_000);
    const cursor = deep.runs[deep.runs.length - 1]!.createdAt;
    const pages: [string, string][] = [
      ['Runs, first page', '/runs'],
      ['Runs, one pipeline', '/runs?pipeline=bench-b'],
      ['Runs, status + stop reason', '/runs?status=stopped&stop=validation_failed'],
      ['Runs, a day', `/runs?from=${cursor.slice(0, 10)}&to=${cursor.slice(0, 10)}`],
      ['Runs, page 101 (cursor)', `/runs?before=${encodeURIComponent(cursor)}`],
      ['Run (real, with reports)', `/runs/${real}`],
      ['Run (synthetic)', '/runs/bench-004321'],
      ['GET /api/runs (poll)', '/api/runs?limit=50'],
    ];
    console.log(
      `\nconsole server time, ${RUNS + 1} runs, ${REQUESTS} sequential requests each (loopback round trip)`,
    );
    console.log('page                              p50        p95        max      HTML');
    for (const [name, path] of pages) {
      const r = await time(`${h.url}${path}`);
      console.log(
        `${name.padEnd(32)} ${msf(r.p50).padStart(9)}  ${msf(r.p95).padStart(9)}  ${msf(r.max).padStart(9)}  ${kb(r.bytes).padStart(8)}`,
      );
    }
    console.log('\npage weight (HTML + stylesheet + script; no images)   total      gzip');
    for (const [name, path] of [
      ['Runs', '/runs'],
      ['Run (real, with reports)', `/runs/${real}`],
      ['Evaluation report (HTML)', `/api/runs/${real}/reports/evaluation?format=html`],
      ['Validation report (HTML)', `/api/runs/${real}/reports/validation?format=html`],
    ] as const) {
      const w = await weight(h.url, path);
      console.log(`${name.padEnd(48)} ${kb(w.html + w.assets).padStart(9)}  ${kb(w.gzip).padStart(8)}`);
    }
    cosmos.client.dispose();
  } finally {
    await h.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
