/**
 * `npm run bench:scale`: where one machine saturates. Drives pipeline runs on devhost at rising
 * offered loads (runs per minute, open loop: a run starts on schedule whether or not the earlier
 * ones finished), each the demo pipeline (examples/pipelines/wages.json on the CPS 1985 data) with
 * its approval answered at once through the real approval page, and reports per load the runs
 * finished, the throughput reached and the orchestration step latency: a run's wall time less its
 * training job and reviewer steps, over the other four steps (bench/scale/report.ts). It stops at
 * the first load whose median step latency is twice the lightest load's (or where runs fail), and
 * says between which loads that happened.
 *
 * Everything runs on this machine: devhost with its Durable engine, Azurite, the Cosmos emulator
 * and the local training backend (a process per job), so the figure is one machine's capacity for
 * whole runs, the local counterpart of docs/scale.md's capacity model.
 *
 * Options: --rates 2,4,8,16,32,64 (runs per minute) --window 60 (seconds of arrivals per load)
 *          --min-runs 4 --run-timeout 300 (seconds) --svg bench/out/scale.svg
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, repoRoot, startLocalSluice, type LocalSluice } from '../../cli/localSluice';
import { decideThroughPage, localOutbox, waitForMessage } from '../../cli/reviewer';
import type { RunSource } from '../../lib/contracts/runDocument';
import {
  asciiChart,
  levelFigures,
  saturation,
  svgChart,
  table,
  type LevelFigures,
  type RunSample,
} from './report';

const TERMINAL = ['succeeded', 'stopped', 'failed', 'canceled'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunDoc {
  status: string;
  createdAt: string;
  endedAt?: string;
  steps: { name: string; startedAt?: string; endedAt?: string }[];
}

async function putPipeline(
  host: LocalSluice,
  definition: Record<string, unknown>,
  name: string,
): Promise<void> {
  const res = await fetch(`${host.url}/api/pipelines/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...definition, name, modelName: name }),
  });
  if (res.status !== 201) throw new Error(`PUT ${name} answered ${res.status}: ${await res.text()}`);
}

/** One run, start to end: started through the API, approved as soon as the request arrives. */
async function oneRun(
  host: LocalSluice,
  pipeline: string,
  csv: Buffer,
  level: number,
  timeoutMs: number,
): Promise<RunSample> {
  const deadline = Date.now() + timeoutMs;
  const res = await fetch(`${host.url}/api/pipelines/${pipeline}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'text/csv' },
    body: csv,
  });
  const started = (await res.json()) as { runId: string; source: RunSource };
  if (res.status !== 202) throw new Error(`start answered ${res.status}: ${JSON.stringify(started)}`);
  const { runId } = started;
  const failed = (status: string): RunSample => ({
    level,
    runId,
    status,
    createdAt: Date.now(),
    endedAt: Date.now(),
    steps: {},
  });
  try {
    const message = await waitForMessage(
      localOutbox(started.source.uri),
      runId,
      (m) => m.kind === 'request',
      {
        timeoutMs: Math.max(1, deadline - Date.now()),
        intervalMs: 100,
      },
    );
    const decision = await decideThroughPage(message.link!, 'approve', 'bench:scale approved at once');
    if (decision.status !== 200) return failed(`decision ${decision.status}`);
  } catch {
    return failed('no approval request in time');
  }
  for (;;) {
    const run = (await (await fetch(`${host.url}/api/runs/${runId}`)).json()) as RunDoc;
    if (TERMINAL.includes(run.status) && run.endedAt) {
      const steps: Record<string, number> = {};
      for (const s of run.steps)
        if (s.startedAt && s.endedAt) steps[s.name] = Date.parse(s.endedAt) - Date.parse(s.startedAt);
      return {
        level,
        runId,
        status: run.status,
        createdAt: Date.parse(run.createdAt),
        endedAt: Date.parse(run.endedAt),
        steps,
      };
    }
    if (Date.now() > deadline) return failed(`still ${run.status} after ${timeoutMs / 1000} s`);
    await sleep(500);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rates: { type: 'string', default: '2,4,8,16,32,64' },
      window: { type: 'string', default: '60' },
      'min-runs': { type: 'string', default: '4' },
      'run-timeout': { type: 'string', default: '300' },
      svg: { type: 'string', default: path.join('bench', 'out', 'scale.svg') },
    },
  });
  const rates = values.rates
    .split(',')
    .map(Number)
    .filter((r) => r > 0)
    .sort((a, b) => a - b);
  const windowMs = Number(values.window) * 1000;
  const minRuns = Number(values['min-runs']);
  const runTimeoutMs = Number(values['run-timeout']) * 1000;
  const root = repoRoot();
  const definition = JSON.parse(
    await readFile(path.join(root, 'examples', 'pipelines', 'wages.json'), 'utf8'),
  ) as Record<string, unknown>;
  const csv = await readFile(path.join(root, 'data', 'cps-wages-1985.csv'));
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-scale-'));
  const cosmosPort = await freePort();
  const host = await startLocalSluice({ dataDir, args: ['--cosmos-port', String(cosmosPort)] });
  const levels: LevelFigures[] = [];
  try {
    console.log(
      `bench:scale on ${host.url} (${os.availableParallelism()} CPUs): the demo pipeline at ${rates.join(', ')} runs/min, ` +
        `${windowMs / 1000} s of arrivals per load (at least ${minRuns} runs), approvals answered at once`,
    );
    // A cold run first (module loads, first containers), not counted.
    await putPipeline(host, definition, 'scale-warmup');
    const warm = await oneRun(host, 'scale-warmup', csv, 0, runTimeoutMs);
    console.log(`  warm-up run: ${warm.status} in ${((warm.endedAt - warm.createdAt) / 1000).toFixed(2)} s`);

    for (const rate of rates) {
      const count = Math.max(minRuns, Math.round((rate * windowMs) / 60_000));
      const spacing = 60_000 / rate;
      // One pipeline (and model) per run, as in bench:pipeline, so every run deploys a first model.
      const names = Array.from({ length: count }, (_, i) => `scale-${rate}-${i + 1}`);
      for (const name of names) await putPipeline(host, definition, name);
      const t0 = Date.now();
      const runs = await Promise.all(
        names.map(async (name, i) => {
          await sleep(Math.max(0, t0 + i * spacing - Date.now()));
          try {
            return await oneRun(host, name, csv, rate, runTimeoutMs);
          } catch (err) {
            const now = Date.now();
            return {
              level: rate,
              runId: name,
              status: `error: ${(err as Error).message}`,
              createdAt: now,
              endedAt: now,
              steps: {},
            };
          }
        }),
      );
      const figures = levelFigures(rate, runs);
      levels.push(figures);
      const failures = runs.filter((r) => r.status !== 'succeeded').map((r) => `${r.runId}: ${r.status}`);
      console.log(
        `  ${rate} runs/min: ${figures.succeeded}/${figures.started} succeeded, ${figures.throughput.toFixed(1)} done/min, ` +
          `step latency p50 ${Math.round(figures.stepP50)} ms p90 ${Math.round(figures.stepP90)} ms` +
          (failures.length ? `; not succeeded: ${failures.slice(0, 3).join('; ')}` : ''),
      );
      if (saturation(levels)) break;
    }

    console.log(`\n${table(levels)}\n`);
    console.log('median step latency by offered load (runs/min)');
    console.log(asciiChart(levels));
    const sat = saturation(levels);
    console.log(
      sat
        ? `\nsaturation: step latency doubled between ${sat.below.rate} and ${sat.at.rate} runs/min ` +
            `(${Math.round(sat.below.stepP50)} → ${Math.round(sat.at.stepP50)} ms against ${Math.round(levels[0]!.stepP50)} ms at ${levels[0]!.rate}/min` +
            `${sat.at.failed ? `, ${sat.at.failed} runs failed` : ''}); this machine finished at most ` +
            `${Math.max(...levels.map((l) => l.throughput)).toFixed(1)} runs/min`
        : `\nno saturation up to ${levels.at(-1)?.rate} runs/min: step latency stayed below twice the lightest load's`,
    );
    const svgPath = path.resolve(root, values.svg);
    await mkdir(path.dirname(svgPath), { recursive: true });
    await writeFile(
      svgPath,
      svgChart(levels, `bench:scale: step latency against offered load (${os.availableParallelism()} CPUs)`),
    );
    console.log(`chart: ${path.relative(root, svgPath)}`);
  } finally {
    await host.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
