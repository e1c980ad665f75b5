import type { Container } from '@azure/cosmos';
import { z } from 'zod';
import type { SafeHtml } from '../approval/html';
import type { AuditLog } from '../audit/log';
import { markup } from '../approval/html';
import type { ApprovalStore } from '../approval/store';
import { approvalInstanceId } from '../contracts/orchestrations';
import type { RunDocument, StepName } from '../contracts/runDocument';
import { readStepOutputs } from '../contracts/run';
import type { ValidationReport } from '../data/checking/report';
import type { EvaluationReport } from '../evaluation/report';
import { evaluationReportSchema } from '../evaluation/report';
import { ensureError } from '../errors';
import resources from '../resources.json';
import { stepKind, terminalRunStatuses, timeBreakdown } from '../runs/document';
import type { ArtifactStore } from '../storage/blob';
import { ChartIds, ganttChart, lineChart } from './charts';
import { csrfField } from './csrf';
import type { RunOverride } from './overrides';
import { overrideChip, overridesOfRuns } from './overrides';
import { duration, fmt, statusChip, when, words } from './format';
import type { LockWait } from '../registry/lockWaits';
import { lockWaitsOf, lockWaitSubject } from '../registry/lockWaits';
import { lockWaitNotice, lockWaitSection } from './lockWait';
import { runPagePath } from './paths';
import { deployedLinks, deployedVersionOf, rolloutOf, rolloutSection } from './rollout';
import type { ConsolePage, PageInput } from './layout';
import { renderPage } from './layout';
import type { ReportKind } from './reports';
import { evaluationSection, reportPath, validationSection } from './reports';

/**
 * The Run page (`/runs/{id}`): the step timeline as a Gantt chart (compute, waiting for people,
 * queued), each step's outputs, the validation report (failed checks, drift per feature with
 * reference vs current histograms), the evaluation (candidate vs champion with intervals, slices),
 * the training job's log tail and loss curve, the approval with who decided, the waits for the
 * model's deployment lock (a notice while it waits; each wait from the audit trail), and Cancel for
 * operators. Everything is read once per request; a part that cannot be read says so in its place.
 */

export interface RunPageDeps {
  artifacts: Pick<ArtifactStore, 'tryGetJson'>;
  approvals: Pick<ApprovalStore, 'readState'>;
  /** The registry's container, for the override mark of the run's model (lib/console/overrides.ts). */
  models?: Pick<Container, 'items'>;
  /** The audit trail, for the run's waits for its model's deployment lock (lib/console/lockWait.ts). */
  audit?: Pick<AuditLog, 'bySubject'>;
  now: () => Date;
}

/** The stored report of a run, by kind: its reference from the step outputs (or the run's `reports`). */
export function reportUriOf(run: RunDocument, kind: ReportKind): string | undefined {
  const step =
    kind === 'validation' ? readStepOutputs(run.steps, 'validate') : readStepOutputs(run.steps, 'evaluate');
  return step?.reportUri ?? run.reports[kind];
}

export async function readRunReport(
  deps: Pick<RunPageDeps, 'artifacts'>,
  run: RunDocument,
  kind: 'validation',
): Promise<ValidationReport | undefined>;
export async function readRunReport(
  deps: Pick<RunPageDeps, 'artifacts'>,
  run: RunDocument,
  kind: 'evaluation',
): Promise<EvaluationReport | undefined>;
export async function readRunReport(
  deps: Pick<RunPageDeps, 'artifacts'>,
  run: RunDocument,
  kind: ReportKind,
): Promise<ValidationReport | EvaluationReport | undefined>;
/** A run's report as stored; undefined when the run has none (yet). */
export async function readRunReport(
  deps: Pick<RunPageDeps, 'artifacts'>,
  run: RunDocument,
  kind: ReportKind,
): Promise<ValidationReport | EvaluationReport | undefined> {
  const uri = reportUriOf(run, kind);
  if (!uri) return undefined;
  const found =
    kind === 'evaluation'
      ? await deps.artifacts.tryGetJson(uri, evaluationReportSchema)
      : await deps.artifacts.tryGetJson<ValidationReport>(uri);
  return found?.value;
}

const historySchema = z.object({
  history: z
    .array(
      z.object({
        iteration: z.number(),
        loss: z.number().nullable().optional(),
        validationLoss: z.number().nullable().optional(),
      }),
    )
    .default([]),
});
const statusFileSchema = z.object({ logTail: z.array(z.string()).default([]), state: z.string().optional() });

export interface RunDetails {
  validation?: ValidationReport;
  evaluation?: EvaluationReport;
  job?: {
    jobId: string;
    backend: string;
    logTail: string[];
    history: z.infer<typeof historySchema>['history'];
  };
  approval?: Awaited<ReturnType<ApprovalStore['readState']>>;
  /** Set when the run's model went to production by emergency override. */
  override?: RunOverride;
  /** The run's waits for its model's deployment lock, from the audit trail. */
  lockWaits?: LockWait[];
  /** Parts that could not be read, with why. */
  problems: string[];
}

async function attempt<T>(what: string, problems: string[], read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    problems.push(`${what}: ${ensureError(err).message}`);
    return undefined;
  }
}

/** Reads what the Run page shows besides the run document, in parallel. */
export async function loadRunDetails(deps: RunPageDeps, run: RunDocument): Promise<RunDetails> {
  const problems: string[] = [];
  const outputs = readStepOutputs(run.steps, 'train');
  // A promoted run's train step imported a model from MLflow: no job, no log or curve to show.
  const job = outputs ? ('jobId' in outputs ? outputs : undefined) : readTrainJob(run);
  const jobs = resources.blobContainers.jobs;
  const lockSubject =
    deps.audit && run.deploymentLock ? lockWaitSubject(run, run.deploymentLock.modelName) : undefined;
  const [validation, evaluation, status, metrics, approval, overrides, lockEntries] = await Promise.all([
    attempt('validation report', problems, () => readRunReport(deps, run, 'validation')),
    attempt('evaluation report', problems, () => readRunReport(deps, run, 'evaluation')),
    job
      ? attempt(
          'training job status',
          problems,
          async () =>
            (
              await deps.artifacts.tryGetJson(
                { container: jobs, path: `${job.jobId}/status.json` },
                statusFileSchema,
              )
            )?.value,
        )
      : undefined,
    job
      ? attempt(
          'training curve',
          problems,
          async () =>
            (
              await deps.artifacts.tryGetJson(
                { container: jobs, path: `${job.jobId}/metrics.json` },
                historySchema,
              )
            )?.value,
        )
      : undefined,
    run.steps.some((s) => s.name === 'approve' && s.status !== 'pending' && s.status !== 'skipped')
      ? attempt('approval', problems, () => deps.approvals.readState(run.id, approvalInstanceId(run.id)))
      : undefined,
    deps.models
      ? attempt('override mark', problems, () => overridesOfRuns(deps.models!, [run.id]))
      : undefined,
    lockSubject
      ? attempt('deployment lock waits', problems, () => deps.audit!.bySubject(lockSubject))
      : undefined,
  ]);
  const lockWaits = lockEntries ? lockWaitsOf(lockEntries, run.id) : [];
  const override = overrides?.get(run.id);
  const train = outputs && 'jobId' in outputs ? outputs : undefined;
  return {
    ...(validation ? { validation } : {}),
    ...(evaluation ? { evaluation } : {}),
    ...(job
      ? {
          job: {
            jobId: job.jobId,
            backend: job.backend,
            logTail: status?.logTail.length ? status.logTail : (train?.logTail ?? []),
            history: metrics?.history ?? [],
          },
        }
      : {}),
    ...(approval ? { approval } : {}),
    ...(override ? { override } : {}),
    ...(lockWaits.length ? { lockWaits } : {}),
    problems,
  };
}

/** The job of a train step still running (its outputs hold only the job reference). */
function readTrainJob(run: RunDocument): { jobId: string; backend: string } | undefined {
  const o = run.steps.find((s) => s.name === 'train')?.outputs;
  return typeof o?.jobId === 'string' && typeof o.backend === 'string'
    ? { jobId: o.jobId, backend: o.backend }
    : undefined;
}

function outputValue(v: unknown): SafeHtml | string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return fmt(v);
  if (typeof v === 'string') return v.length > 120 ? `${v.slice(0, 117)}…` : v;
  if (Array.isArray(v))
    return v.length === 0
      ? '—'
      : v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  return JSON.stringify(v);
}

/** Step outputs worth showing (storage references are replaced by the report links). */
const HIDDEN_OUTPUTS = new Set(['reportUri', 'rawUri', 'columnarUri', 'modelUri', 'logTail']);

function stepsTable(run: RunDocument, now: Date): SafeHtml {
  const rows = run.steps.map((s) => {
    const took =
      s.startedAt && (s.endedAt || s.status === 'running')
        ? duration((s.endedAt ? Date.parse(s.endedAt) : now.getTime()) - Date.parse(s.startedAt))
        : '—';
    const outputs = Object.entries(s.outputs ?? {}).filter(([k]) => !HIDDEN_OUTPUTS.has(k));
    const link =
      s.name === 'validate' && s.outputs?.reportUri
        ? markup`<a href="${reportPath(run.id, 'validation')}">validation report</a>`
        : s.name === 'evaluate' && s.outputs?.reportUri
          ? markup`<a href="${reportPath(run.id, 'evaluation')}">evaluation report</a>`
          : '';
    return markup`<tr id="step-${s.name}">
<th scope="row">${s.name}<br /><span class="sub">${stepKind[s.name as StepName] === 'people' ? 'people' : 'compute'}</span></th>
<td>${statusChip(s.status)}${s.attempt > 1 ? markup` <span class="sub">attempt ${s.attempt}</span>` : ''}</td>
<td class="n">${took}</td>
<td>${
      outputs.length || link || s.error
        ? markup`<dl class="kv">${outputs.map(([k, v]) => markup`<dt>${k}</dt><dd class="mono">${outputValue(v)}</dd>`)}</dl>${link}${s.error ? markup`<p class="down">${s.error.code}: ${s.error.message}</p>` : ''}`
        : markup`<span class="sub">—</span>`
    }</td>
</tr>`;
  });
  return markup`<div class="scroll" tabindex="0"><table class="steps">
<thead><tr><th scope="col">Step</th><th scope="col">Status</th><th scope="col" class="n">Took</th><th scope="col">Outputs</th></tr></thead>
<tbody>${rows}</tbody></table></div>`;
}

function approvalSection(run: RunDocument, details: RunDetails): SafeHtml {
  const state = details.approval;
  const outputs = readStepOutputs(run.steps, 'approve');
  if (!state && !outputs) return markup`<p class="sub">No approval was asked for this run.</p>`;
  const status = state?.record.status ?? outputs?.outcome ?? 'pending';
  const decisions = state?.decisions ?? [];
  return markup`<p>${statusChip(status === 'approved' ? 'succeeded' : status === 'pending' ? 'waiting_for_approval' : 'stopped')} <strong>${status}</strong>${
    state
      ? markup` · stage ${state.record.stage}${status === 'pending' ? markup` · deadline ${when(state.record.deadline)}` : ''}`
      : ''
  }</p>
${state?.record.withdrawn ? markup`<p class="sub">Withdrawn: ${state.record.withdrawn.message}</p>` : ''}
${
  decisions.length
    ? markup`<ul class="plain">${decisions.map(
        (d) =>
          markup`<li>${d.delegate ? markup`<strong>${d.delegate}</strong> on behalf of <strong>${d.reviewer}</strong>` : markup`<strong>${d.reviewer}</strong>`} ${d.decision === 'approve' ? 'approved' : 'rejected'} on ${when(d.decidedAt)}${d.comment ? markup`: “${d.comment}”` : ''}</li>`,
      )}</ul>`
    : markup`<p class="sub">${status === 'pending' ? `Waiting for ${state?.record.policy.reviewers.join(', ') ?? 'the reviewers'}.` : 'No reviewer decided.'}</p>`
}
${outputs?.reasons.length ? markup`<p class="sub">${outputs.reasons.join('; ')}</p>` : ''}`;
}

function trainingSection(details: RunDetails, ids: ChartIds): SafeHtml {
  const job = details.job;
  if (!job) return markup`<p class="sub">No training job ran.</p>`;
  const loss = job.history
    .filter((p) => typeof p.loss === 'number')
    .map((p) => ({ x: p.iteration, y: p.loss! }));
  const val = job.history
    .filter((p) => typeof p.validationLoss === 'number')
    .map((p) => ({ x: p.iteration, y: p.validationLoss! }));
  const series = [
    ...(loss.length ? [{ name: 'training loss', points: loss }] : []),
    ...(val.length ? [{ name: 'validation loss', points: val }] : []),
  ];
  return markup`<p class="sub">Job <code>${job.jobId}</code> on ${job.backend}.</p>
${series.length ? lineChart(ids, 'Loss curve', 'iteration', series) : markup`<p class="sub">The job recorded no loss curve.</p>`}
<h3>Log tail</h3>
${job.logTail.length ? markup`<pre class="log" tabindex="0" aria-label="Training job log, last lines">${job.logTail.join('\n')}</pre>` : markup`<p class="sub">No log lines.</p>`}`;
}

export interface RunPageOptions {
  canOperate: boolean;
  csrf: string;
  /** A note after an action (e.g. `?done=cancel`). */
  notice?: string;
}

export function renderRunPage(
  run: RunDocument,
  details: RunDetails,
  now: Date,
  frame: Pick<PageInput, 'banner' | 'who' | 'csrf'>,
  options: RunPageOptions,
): ConsolePage {
  const ids = new ChartIds();
  const t = timeBreakdown(run, now);
  const startMs = Date.parse(run.createdAt);
  const endMs = run.endedAt ? Date.parse(run.endedAt) : now.getTime();
  const active = !terminalRunStatuses.has(run.status);
  const gantt = ganttChart(
    ids,
    { startMs, endMs, computeMs: t.computeMs, peopleMs: t.peopleMs, queuedMs: t.queuedMs },
    run.steps.map((s) => ({
      name: s.name,
      kind: stepKind[s.name as StepName],
      status: s.status,
      ...(s.startedAt ? { startMs: Date.parse(s.startedAt) } : {}),
      ...(s.endedAt ? { endMs: Date.parse(s.endedAt) } : {}),
    })),
  );
  const body = markup`
<div data-poll-run="/api/runs/${encodeURIComponent(run.id)}" data-status="${run.status}">
<p class="sub"><a href="/runs?pipeline=${encodeURIComponent(run.pipeline)}">${run.pipeline}</a> · version ${run.pipelineVersion} · ${run.trigger.kind} by ${run.trigger.by}</p>
<h1>Run <span class="mono">${run.id}</span></h1>
<p>${statusChip(run.status)}${run.stopReason ? markup` <strong>${words(run.stopReason)}</strong>` : ''}${run.reason ? markup` — ${run.reason}` : ''}${details.override ? markup` ${overrideChip(details.override.override)}` : ''}</p>
${options.notice ? markup`<div class="notice info" role="status"><strong>${options.notice}</strong></div>` : ''}
${lockWaitNotice(run)}
${active ? markup`<p class="sub">This run is still going; the page follows it. <a href="${runPagePath(run.id, run.pipeline)}">Refresh</a></p>` : ''}
${
  active && options.canOperate
    ? markup`<form class="inline" method="post" action="${runPagePath(run.id, run.pipeline)}/cancel">${csrfField(options.csrf)}<button type="submit" class="danger" id="cancel-run">Cancel run</button></form>`
    : ''
}
</div>
<section class="card" aria-labelledby="s-time">
<h2 id="s-time">Timeline</h2>
<div class="grid">
<div class="stat"><div class="k">Total</div><div class="v" data-timing="total">${duration(t.totalMs)}</div></div>
<div class="stat"><div class="k">Compute</div><div class="v" data-timing="compute">${duration(t.computeMs)}</div></div>
<div class="stat"><div class="k">Waiting for people</div><div class="v" data-timing="people">${duration(t.peopleMs)}</div></div>
<div class="stat"><div class="k">Queued</div><div class="v" data-timing="queued">${duration(t.queuedMs)}</div></div>
</div>
${gantt}
<ul class="legend" aria-hidden="true"><li><i class="compute"></i>compute</li><li><i class="people"></i>waiting for people</li><li><i class="queued"></i>queued</li><li><i class="failed"></i>failed</li></ul>
<p class="sub">Created ${when(run.createdAt)}${run.endedAt ? markup` · ended ${when(run.endedAt)}` : ''}</p>
</section>
<section class="card" aria-labelledby="s-steps">
<h2 id="s-steps">Steps and outputs</h2>
${stepsTable(run, now)}
</section>
<section class="card" aria-labelledby="s-validation">
<h2 id="s-validation">Validation${details.validation ? markup` <a class="sub" href="${reportPath(run.id, 'validation')}">report</a>` : ''}</h2>
${details.validation ? validationSection(details.validation, ids) : markup`<p class="sub">No validation report yet.</p>`}
</section>
<section class="card" aria-labelledby="s-evaluation">
<h2 id="s-evaluation">Evaluation${details.evaluation ? markup` <a class="sub" href="${reportPath(run.id, 'evaluation')}">report</a>` : ''}</h2>
${details.evaluation ? evaluationSection(details.evaluation, ids) : markup`<p class="sub">No evaluation report yet.</p>`}
</section>
<section class="card" aria-labelledby="s-training">
<h2 id="s-training">Training</h2>
${trainingSection(details, ids)}
</section>
<section class="card" aria-labelledby="s-approval">
<h2 id="s-approval">Approval</h2>
${approvalSection(run, details)}
</section>
${deploymentSection(run, details.override)}
${lockWaitSection(details.lockWaits ?? [])}
${details.problems.length ? markup`<section class="card" aria-labelledby="s-problems"><h2 id="s-problems">Could not be read</h2><ul class="plain">${details.problems.map((p) => markup`<li>${p}</li>`)}</ul></section>` : ''}`;
  return renderPage({ ...frame, title: `Run ${run.id}`, nav: 'runs', body });
}

/** The rollout (live while it runs), the deployed version's evidence pack and MLflow zip, the deployment record. */
function deploymentSection(run: RunDocument, override: RunOverride | undefined): SafeHtml {
  const rollout = rolloutOf(run);
  const deployed =
    deployedVersionOf(run) ??
    (override ? { modelName: override.modelName, version: override.version } : undefined);
  if (!rollout && !deployed && !run.deployment) return markup``;
  const o = override?.override;
  return markup`<section class="card" aria-labelledby="s-deploy"><h2 id="s-deploy">Deployment</h2>
${
  o
    ? markup`<div class="notice error" role="status" data-override-notice="${override!.version}"><strong>${override!.modelName} v${override!.version}: ${overrideChip(o)}</strong><div>Deployed to production by emergency override on <time datetime="${o.at}">${when(o.at)}</time> by ${o.by}, without the approval quorum: “${o.reason}”. Post-hoc review <code>${o.reviewApprovalId}</code> ${o.review === 'required' ? markup`due <time datetime="${o.reviewDue}">${when(o.reviewDue)}</time>` : markup`decided${o.reviewedAt ? markup` <time datetime="${o.reviewedAt}">${when(o.reviewedAt)}</time>` : ''}${o.reviewedBy?.length ? ` by ${o.reviewedBy.join(', ')}` : ''}`}.</div></div>`
    : ''
}
${deployed ? deployedLinks(deployed) : ''}
${rollout ? markup`<h3>Rollout</h3>${rolloutSection(rollout)}` : ''}
${run.deployment ? markup`<dl class="kv">${Object.entries(run.deployment).map(([k, v]) => markup`<dt>${k}</dt><dd class="mono">${outputValue(v)}</dd>`)}</dl>` : ''}
</section>`;
}

/** A report alone, as the HTML answer of the reports API. */
export function renderReportPage(
  run: RunDocument,
  kind: ReportKind,
  report: ValidationReport | EvaluationReport,
  frame: Pick<PageInput, 'banner' | 'who' | 'csrf'>,
): ConsolePage {
  const ids = new ChartIds();
  const section =
    kind === 'validation'
      ? validationSection(report as ValidationReport, ids, 2)
      : evaluationSection(report as EvaluationReport, ids, 2);
  const body = markup`<p class="sub"><a href="${runPagePath(run.id, run.pipeline)}">Run ${run.id}</a> · ${run.pipeline} · <a href="${reportPath(run.id, kind)}" type="application/json">JSON</a> (Accept: application/json)</p>
<h1>${kind === 'validation' ? 'Validation report' : 'Evaluation report'}</h1>
<div class="card">${section}</div>`;
  return renderPage({ ...frame, title: `${kind} report · ${run.id}`, nav: 'runs', body });
}
