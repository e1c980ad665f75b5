import type {
  RunDocument,
  RunSource,
  RunStatus,
  RunTrigger,
  Step,
  StepName,
  StepUpdate,
} from '../contracts/runDocument';
import { stepNames } from '../contracts/runDocument';
import type { RunReportKind } from '../http/paths';
import { consoleRunPath, runReportPath } from '../http/paths';

/** Which part of the wall clock a step spends: machines working, or people deciding. */
export const stepKind: Record<StepName, 'compute' | 'people'> = {
  ingest: 'compute',
  validate: 'compute',
  train: 'compute',
  evaluate: 'compute',
  approve: 'people',
  deploy: 'compute',
};

export const terminalRunStatuses: ReadonlySet<RunStatus> = new Set([
  'succeeded',
  'stopped',
  'failed',
  'canceled',
]);

/** Applies a step update; pure so it can be retried (same update twice gives the same document). */
export function applyStepUpdate(run: RunDocument, u: StepUpdate): RunDocument {
  const steps = run.steps.map((s) => {
    if (s.name !== u.step) return s;
    const next: Step = { ...s, status: u.status, attempt: u.attempt ?? s.attempt };
    if (u.status === 'running') next.startedAt = s.startedAt ?? u.at;
    if (['succeeded', 'failed', 'skipped', 'canceled'].includes(u.status)) {
      next.startedAt = s.startedAt ?? u.at;
      next.endedAt = u.at;
    }
    if (u.outputs) next.outputs = { ...(s.outputs ?? {}), ...u.outputs };
    if (u.error) next.error = u.error;
    return next;
  });
  let status = run.status;
  if (!terminalRunStatuses.has(status)) {
    if (u.step === 'approve' && u.status === 'running') status = 'waiting_for_approval';
    else if (u.status === 'running') status = 'running';
  }
  return { ...run, steps, status, updatedAt: maxIso(run.updatedAt, u.at) };
}

/**
 * Applies step updates in order, each with its own `at` (a batch loses nothing from the timeline),
 * then merges `metrics` into the run's metrics. Pure, like {@link applyStepUpdate}.
 */
export function applyStepUpdates(
  run: RunDocument,
  updates: readonly StepUpdate[],
  metrics?: Record<string, unknown>,
): RunDocument {
  const next = updates.reduce(applyStepUpdate, run);
  return metrics ? { ...next, metrics: { ...next.metrics, ...metrics } } : next;
}

/** Wall-clock split of a run: compute (steps run by machines), people (approval), queued (the rest). */
export function timeBreakdown(
  run: RunDocument,
  now: Date,
): { totalMs: number; computeMs: number; peopleMs: number; queuedMs: number } {
  const start = Date.parse(run.createdAt);
  const end = run.endedAt ? Date.parse(run.endedAt) : now.getTime();
  let computeMs = 0;
  let peopleMs = 0;
  for (const s of run.steps) {
    if (!s.startedAt) continue;
    const d = Math.max(0, (s.endedAt ? Date.parse(s.endedAt) : end) - Date.parse(s.startedAt));
    if (stepKind[s.name] === 'people') peopleMs += d;
    else computeMs += d;
  }
  const totalMs = Math.max(0, end - start);
  return { totalMs, computeMs, peopleMs, queuedMs: Math.max(0, totalMs - computeMs - peopleMs) };
}

export function newRunDocument(init: {
  id: string;
  pipeline: string;
  pipelineVersion: number;
  instanceId: string;
  trigger: RunTrigger;
  source: RunSource;
  at: string;
}): RunDocument {
  return {
    ...init,
    status: 'queued',
    createdAt: init.at,
    updatedAt: init.at,
    steps: stepNames.map((name) => ({ name, status: 'pending', attempt: 0 })),
    metrics: {},
    reports: {},
  };
}

function maxIso(a: string, b: string): string {
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

/**
 * Where people follow a run's data: its reports through the API (`GET /api/runs/{id}/reports/{kind}`,
 * JSON or HTML) and its console page; paths on this app's origin. The run's `reports` and steps'
 * `reportUri` stay storage references for the app's own readers; these are the links to open.
 */
export function runLinks(run: Pick<RunDocument, 'id' | 'pipeline' | 'reports' | 'steps'>): {
  console: string;
  reports: Partial<Record<RunReportKind, string>>;
} {
  const has = (kind: RunReportKind, step: StepName): boolean =>
    Boolean(run.reports[kind]) ||
    typeof run.steps.find((s) => s.name === step)?.outputs?.reportUri === 'string';
  const reports: Partial<Record<RunReportKind, string>> = {};
  if (has('validation', 'validate')) reports.validation = runReportPath(run.id, 'validation');
  if (has('evaluation', 'evaluate')) reports.evaluation = runReportPath(run.id, 'evaluation');
  return { console: consoleRunPath(run.id, run.pipeline), reports };
}
