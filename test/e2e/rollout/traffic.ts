/**
 * Live predict traffic for the rollout e2e tests: rows of the wages data, sent by a few concurrent
 * clients with request keys until stopped, every answer kept (status, version, variant).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { PipelineHarness } from '../pipeline/harness';
import { WAGES_CSV, testPipeline } from '../pipeline/harness';

const NUMERIC = new Set(['education', 'south', 'experience', 'union', 'age', 'married']);
const FEATURES = [
  'education',
  'experience',
  'age',
  'gender',
  'race',
  'south',
  'union',
  'married',
  'occupation',
  'sector',
];

/** The wages rows as predict takes them (the target left out). */
export function wageRows(csv = WAGES_CSV): Record<string, unknown>[] {
  const [header, ...lines] = readFileSync(csv, 'utf8').trim().split('\n');
  const names = header!.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row: Record<string, unknown> = {};
    names.forEach((n, i) => {
      if (FEATURES.includes(n)) row[n] = NUMERIC.has(n) ? Number(cells[i]) : cells[i];
    });
    return row;
  });
}

/** A CSV of the wages rows that pass `keep` (same header), written to `file`. */
export function wagesSubset(file: string, keep: (cells: string[]) => boolean): string {
  const [header, ...lines] = readFileSync(WAGES_CSV, 'utf8').trim().split('\n');
  writeFileSync(file, [header, ...lines.filter((l) => keep(l.split(',')))].join('\n') + '\n');
  return file;
}

export interface Answer {
  status: number;
  version?: number;
  variant?: string;
  error?: string;
}

export interface Traffic {
  answers: Answer[];
  stop(): Promise<void>;
}

/**
 * The rows in a fixed shuffled order: the data file is not in random order, so consecutive windows
 * from its start would be a biased sample, and a good candidate's first 50-100 live rows could
 * drift from its holdout predictions by chance (a PSI guard stopping it in CI once).
 */
export function shuffledRows(rows: Record<string, unknown>[], seed = 1985): Record<string, unknown>[] {
  const out = [...rows];
  let state = seed >>> 0;
  const next = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** `clients` concurrent loops posting 5 rows each (each row through `transform`) with a request key, until stopped. */
export function sendTraffic(
  h: PipelineHarness,
  model: string,
  clients = 3,
  transform: (row: Record<string, unknown>) => Record<string, unknown> = (row) => row,
): Traffic {
  const rows = shuffledRows(wageRows()).map(transform);
  const answers: Answer[] = [];
  let running = true;
  let n = 0;
  const loop = async (c: number) => {
    while (running) {
      const i = n++;
      const start = (i * 5) % (rows.length - 5);
      try {
        const res = await h.api(
          'POST',
          `/api/models/${model}/predict`,
          { rows: rows.slice(start, start + 5) },
          { 'x-request-key': `client-${c}-${i}` },
        );
        const body = (await res.json()) as { modelVersion?: number; variant?: string; code?: string };
        answers.push({
          status: res.status,
          ...(body.modelVersion !== undefined ? { version: body.modelVersion } : {}),
          ...(body.variant !== undefined ? { variant: body.variant } : {}),
          ...(body.code ? { error: body.code } : {}),
        });
      } catch (err) {
        if (running) answers.push({ status: 0, error: (err as Error).message });
        // The host is down (a crash test) or gone: do not spin.
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const loops = Array.from({ length: clients }, (_, c) => loop(c));
  const traffic: Traffic = {
    answers,
    async stop() {
      running = false;
      live.delete(traffic);
      await Promise.all(loops);
    },
  };
  live.add(traffic);
  return traffic;
}

const live = new Set<Traffic>();

/** Stops every traffic loop still running (afterEach: a failed assertion must not leave one spinning). */
export async function stopAllTraffic(): Promise<void> {
  await Promise.all([...live].map((t) => t.stop()));
}

/** A pipeline of the wages model whose first run goes to production directly; `over` replaces sections. */
export function rolloutPipeline(name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return testPipeline(name, over);
}

/** Runs a pipeline version to the end with an approval; returns the run id. */
export async function approvedRun(h: PipelineHarness, pipeline: string, csv?: string): Promise<string> {
  const id = await h.start(pipeline, csv);
  const waiting = await h.waitFor(
    id,
    'approval',
    (r) => r.status === 'waiting_for_approval' || ['succeeded', 'stopped', 'failed'].includes(r.status),
    180_000,
  );
  if (waiting.status !== 'waiting_for_approval')
    throw new Error(`run ${id} ended ${waiting.status} before approval: ${waiting.reason ?? ''}`);
  await h.decide(id, 'approve', 'looks good');
  return id;
}

/**
 * The set-up each rollout test starts from: the pipeline put, its first run approved and finished,
 * so production holds version 1 (asserted: the rest of the test means nothing otherwise).
 */
export async function withProduction(h: PipelineHarness, name: string): Promise<void> {
  await h.put(rolloutPipeline(name));
  const first = await approvedRun(h, name);
  expect((await h.finished(first)).status).toBe('succeeded');
}

/**
 * Puts the pipeline's next version: the same data and a candidate that differs only by its ridge
 * alpha (0.9), rolled out with `deployment`.
 */
export async function putCandidate(
  h: PipelineHarness,
  name: string,
  deployment: Record<string, unknown>,
): Promise<void> {
  const base = rolloutPipeline(name);
  await h.put({
    ...base,
    training: { ...(base.training as object), hyperparameters: { alpha: 0.9 } },
    deployment,
  });
}

/** Fast canary steps for tests: two steps of a couple of seconds and a few dozen requests. */
export const FAST_CANARY = {
  strategy: 'canary',
  steps: [
    { percent: 50, minRequests: 30, minSeconds: 2 },
    { percent: 100, minRequests: 30, minSeconds: 2 },
  ],
  // The default PSI limit: a step now waits for PSI to be judged on enough rows that noise alone
  // breaches 0.25 in about 5 % of judgments (the good candidate measured 0.08 over 830 rows), and the
  // smoothed PSI no longer counts an empty bin as 0.69, so the shifted candidate measures about 0.43:
  // 0.4 would decide it by a coin toss.
  guards: { maxPredictionPsi: 0.25, minSamples: 20 },
  checkEverySeconds: 1,
};

/** Settings that make a rollout visible to predict within a fraction of a second. */
export const FAST_ROLLOUT_ENV = {
  TRAFFIC_FLUSH_MS: '300',
  ROLLOUT_STATE_TTL_MS: '200',
  SCORING_ALIAS_TTL_MS: '200',
};
