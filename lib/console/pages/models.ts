import type { Container } from '@azure/cosmos';
import type { SafeHtml } from '../../approval/html';
import { markup } from '../../approval/html';
import type { ApprovalRecord } from '../../contracts/approvalRecord';
import { approvalRecordSchema } from '../../contracts/approvalRecord';
import { DATASET_COLUMNAR_URI_TAG } from '../../contracts/pipeline';
import type { MonitoringStore } from '../../monitoring/store';
import type { AliasMove, ModelVersion } from '../../registry/records';
import { OVERRIDE_PREFIX, PRODUCTION_ALIAS, overrideLabel } from '../../registry/records';
import type { ModelDetail, ModelRegistry, ModelSummary } from '../../registry/registry';
import { ROLLBACK_PREFIX, approvedProductionVersions } from '../../registry/rollback';
import type { ConsoleAccess } from '../access';
import { csrfField } from '../csrf';
import { ChartIds } from '../charts';
import { overrideChip } from '../overrides';
import { ensureError } from '../../errors';
import { fmt, when } from '../format';
import { consoleMlflowZipPath, runPagePath } from '../paths';
import { evidencePath } from '../rollout';
import type { MonitoringView } from './monitoring';
import { loadMonitoring, monitoringSection } from './monitoring';
import type { ConsolePage, PageInput } from '../layout';
import { renderPage } from '../layout';
import type { TrendPoint } from './trend';
import { trendChart } from './trend';

/**
 * The Models pages: `/models` lists the registry; `/models/{name}` shows one model's versions with
 * their metrics across versions (a trend chart with the evaluation's confidence intervals), its
 * aliases and their history as a timeline, digests, the lineage dataset → run → model → deployment,
 * the override mark of a version deployed by break-glass until its post-hoc review is decided, live
 * monitoring (./monitoring.ts), and, for operators, Rollback (the same code as
 * POST /api/models/{name}/rollback).
 */

type Frame = Pick<PageInput, 'banner' | 'who' | 'csrf'>;

/** Metrics charted on the model page (the primary metric first). */
export const MAX_CHARTED_METRICS = 4;
/** Versions listed in the table (the chart shows them all). */
export const MAX_LISTED_VERSIONS = 50;

export async function loadModelList(registry: Pick<ModelRegistry, 'listModels'>): Promise<ModelSummary[]> {
  return registry.listModels();
}

export function renderModelListPage(models: readonly ModelSummary[], frame: Frame): ConsolePage {
  const body = markup`<h1>Models</h1>
<p class="sub">Every registered model with its latest version and aliases.</p>
<section class="card">${
    models.length
      ? markup`<div class="scroll" tabindex="0"><table><caption class="sr-only">Registered models</caption>
<thead><tr><th scope="col">Model</th><th scope="col">Latest</th><th scope="col">Production</th><th scope="col">Other aliases</th><th scope="col">Updated</th></tr></thead>
<tbody>${models.map(
          (m) => markup`<tr data-model="${m.modelName}">
<td><a href="/models/${encodeURIComponent(m.modelName)}">${m.modelName}</a></td>
<td class="n">v${m.latestVersion}</td>
<td class="n">${m.aliases[PRODUCTION_ALIAS] !== undefined ? `v${m.aliases[PRODUCTION_ALIAS]}` : '—'}</td>
<td>${
            Object.entries(m.aliases)
              .filter(([a]) => a !== PRODUCTION_ALIAS)
              .map(([a, v]) => `${a} → v${v}`)
              .join(', ') || '—'
          }</td>
<td><time datetime="${m.updatedAt}">${when(m.updatedAt)}</time></td>
</tr>`,
        )}</tbody></table></div>`
      : markup`<p>No model is registered yet. A run registers its candidate after evaluation.</p>`
  }</section>`;
  return renderPage({ ...frame, title: 'Models', nav: 'models', body });
}

export interface ModelPageView {
  model: ModelDetail;
  /** Approval records of this model's versions (evidence: CIs, primary metric; status). */
  approvals: ApprovalRecord[];
  /** Live monitoring (GET /api/models/{name}/monitoring's content); undefined when not read. */
  monitoring?: MonitoringView;
  /** Why monitoring could not be read, shown in its place. */
  monitoringProblem?: string;
  notice?: { kind: 'success' | 'error'; text: string };
}

export async function loadModel(
  deps: {
    registry: Pick<ModelRegistry, 'getModel'>;
    approvals: Pick<Container, 'items'>;
    monitoring?: Pick<MonitoringStore, 'get' | 'proposals'>;
  },
  name: string,
): Promise<ModelPageView | undefined> {
  const monitoring = deps.monitoring
    ? loadMonitoring(deps.monitoring, name).then(
        (view) => ({ view }),
        (err: unknown) => ({ problem: ensureError(err).message }),
      )
    : undefined;
  const model = await deps.registry.getModel(name);
  if (!model) return undefined;
  const [{ resources }, mon] = await Promise.all([
    deps.approvals.items
      .query({
        query: 'SELECT * FROM c WHERE c.type = "approval" AND c.candidate.modelName = @name',
        parameters: [{ name: '@name', value: name }],
      })
      .fetchAll(),
    monitoring,
  ]);
  return {
    model,
    approvals: resources.map((d) => approvalRecordSchema.parse(d)),
    ...(mon && 'view' in mon ? { monitoring: mon.view } : {}),
    ...(mon && 'problem' in mon ? { monitoringProblem: mon.problem } : {}),
  };
}

const short = (digest: string) => `${digest.slice(0, 12)}…`;
/** A run's link on the fast `/runs/{pipeline}/{id}` path when the pipeline is known (else the redirect). */
const runLink = (runId: string, pipeline: string | undefined) =>
  markup`<a href="${runPagePath(runId, pipeline)}">${runId}</a>`;

/** The pipeline of each run that registered a version (its `pipeline` tag), for run links. */
function pipelinesByRun(versions: readonly ModelVersion[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of versions) if (v.tags.pipeline) out.set(v.runId, v.tags.pipeline);
  return out;
}

/** The notice at the top while a version is marked "override, review required". */
function overrideNotices(versions: readonly ModelVersion[]): SafeHtml {
  const open = versions.filter((v) => v.override?.review === 'required');
  return markup`${open.map((v) => {
    const m = v.override!;
    return markup`<div class="notice error" role="status" data-override-notice="${v.version}"><strong>v${v.version}: ${overrideLabel(m)}</strong><div>Deployed by emergency override on <time datetime="${m.at}">${when(m.at)}</time> by ${m.by}, without the approval quorum: “${m.reason}”. Its post-hoc review (<a href="/approvals">approval</a> <code>${m.reviewApprovalId}</code>) is due <time datetime="${m.reviewDue}">${when(m.reviewDue)}</time>.</div></div>`;
  })}`;
}

/** The chart points of one metric: the version's registered value, the CI from its evaluation. */
export function metricPoints(view: ModelPageView, metric: string): TrendPoint[] {
  const current = view.model.head.aliases[PRODUCTION_ALIAS]?.version;
  const latestApproval = new Map<number, ApprovalRecord>();
  for (const a of [...view.approvals].sort((x, y) => x.createdAt.localeCompare(y.createdAt))) {
    latestApproval.set(a.candidate.modelVersion, a);
  }
  const out: TrendPoint[] = [];
  for (const v of view.model.versions) {
    const value = v.metrics[metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    const ci = latestApproval.get(v.version)?.evidence.metrics.find((m) => m.name === metric)?.candidateCi;
    out.push({
      version: v.version,
      value,
      ...(ci ? { ci } : {}),
      ...(v.version === current ? { current: true } : {}),
    });
  }
  return out.sort((a, b) => a.version - b.version);
}

/** The metrics to chart: the evaluation's primary metric first, then the others the versions share. */
export function chartedMetrics(view: ModelPageView): string[] {
  const primary = view.approvals.find((a) => a.evidence.primaryMetric)?.evidence.primaryMetric;
  const counts = new Map<string, number>();
  for (const v of view.model.versions)
    for (const [k, val] of Object.entries(v.metrics))
      if (typeof val === 'number') counts.set(k, (counts.get(k) ?? 0) + 1);
  const rest = [...counts.keys()].filter((k) => k !== primary).sort();
  return [...(primary && counts.has(primary) ? [primary] : []), ...rest].slice(0, MAX_CHARTED_METRICS);
}

function aliasTimeline(history: readonly AliasMove[], pipelines: ReadonlyMap<string, string>): SafeHtml {
  if (history.length === 0) return markup`<p>No alias has been set.</p>`;
  return markup`<ul class="plain timeline">${[...history].reverse().map(
    (m) => markup`<li data-seq="${m.seq}">
<div><strong>${m.alias}</strong> ${m.from === null ? 'set' : markup`v${m.from} →`} ${m.to === null ? 'removed' : markup`v${m.to}`}
${m.reason.startsWith(ROLLBACK_PREFIX) ? markup` <span class="chip fail">rollback</span>` : ''}${m.reason.startsWith(OVERRIDE_PREFIX) ? markup` <span class="chip pending" data-override-move="${m.seq}">override</span>` : ''}</div>
<div class="sub"><time datetime="${m.at}">${when(m.at)}</time> by ${m.by}${m.runId ? markup` · run ${runLink(m.runId, pipelines.get(m.runId))}` : ''}${m.approvalRef ? markup` · approval <code>${m.approvalRef}</code>` : ''}</div>
${m.reason ? markup`<div>${m.reason}</div>` : ''}
</li>`,
  )}</ul>`;
}

function lineage(
  v: ModelVersion,
  history: readonly AliasMove[],
  approvals: readonly ApprovalRecord[],
): SafeHtml {
  const deployments = history.filter((m) => m.to === v.version);
  const approval =
    approvals.find((a) => a.candidate.modelVersion === v.version && a.status !== 'pending') ??
    approvals.find((a) => a.candidate.modelVersion === v.version);
  const columnar = v.tags[DATASET_COLUMNAR_URI_TAG];
  return markup`<dl class="kv lineage" aria-label="Lineage of version ${v.version}">
<dt>Dataset</dt><dd><code title="${v.datasetDigest}">sha256 ${short(v.datasetDigest)}</code>${columnar ? markup` <code class="sub">${columnar}</code>` : ''}</dd>
<dt>Run</dt><dd>${runLink(v.runId, v.tags.pipeline)}</dd>
<dt>Model</dt><dd>v${v.version} <code title="${v.modelDigest}">${short(v.modelDigest)}</code></dd>
<dt>Approval</dt><dd>${approval ? markup`<span class="chip ${approval.status}">${approval.status}</span>` : '—'}${v.override ? markup` ${overrideChip(v.override)}` : ''}</dd>
<dt>Deployment</dt><dd>${
    deployments.length
      ? deployments.map((m) => markup`${m.alias} <time datetime="${m.at}">${when(m.at)}</time> by ${m.by}; `)
      : 'never deployed'
  }</dd>
</dl>`;
}

function rollbackForm(view: ModelPageView, access: ConsoleAccess, csrf: string | undefined): SafeHtml {
  const name = view.model.head.modelName;
  const current = view.model.head.aliases[PRODUCTION_ALIAS]?.version;
  if (current === undefined)
    return markup`<p>No version is in production, so there is nothing to roll back.</p>`;
  const targets = [...approvedProductionVersions(view.model.aliasHistory).keys()]
    .filter((v) => v !== current)
    .sort((a, b) => b - a);
  if (!access.canOperate) return markup`<p class="fine">Rolling back needs the Sluice.Operator role.</p>`;
  if (targets.length === 0)
    return markup`<p>Version ${current} is the only version that was approved and in production, so there is nothing to roll back to.</p>`;
  return markup`<form method="post" action="/models/${encodeURIComponent(name)}/rollback" class="decide" id="rollback-form">
${csrf ? csrfField(csrf) : ''}
<p>Production serves v${current}. A rollback moves it to a version that was approved and in production before; it is recorded in the alias history with your reason.</p>
<label for="rollback-to">Roll back to</label>
<select id="rollback-to" name="to">
<option value="">the version before the last promotion</option>
${targets.map((v) => markup`<option value="${v}">v${v}</option>`)}
</select>
<label for="rollback-reason">Reason</label>
<textarea id="rollback-reason" name="reason" required minlength="3" maxlength="2000" placeholder="Why production must go back"></textarea>
<div class="buttons"><button type="submit" class="danger">Roll back production</button></div>
</form>`;
}

export function renderModelPage(view: ModelPageView, access: ConsoleAccess, frame: Frame): ConsolePage {
  const { head, versions, aliasHistory } = view.model;
  const name = head.modelName;
  const production = head.aliases[PRODUCTION_ALIAS]?.version;
  const metrics = chartedMetrics(view);
  const listed = versions.slice(0, MAX_LISTED_VERSIONS);
  const allMetrics = [...new Set(versions.flatMap((v) => Object.keys(v.metrics)))].sort();
  const productionOverride = versions.find((v) => v.version === production)?.override;
  const pipelines = pipelinesByRun(versions);
  const ids = new ChartIds();
  const body = markup`<p class="sub"><a href="/models">Models</a> /</p>
<h1>${name}</h1>
${view.notice ? markup`<div class="notice ${view.notice.kind}" role="status"><strong>${view.notice.text}</strong></div>` : ''}
${overrideNotices(versions)}
<div class="grid">
<div class="stat"><div class="k">Production</div><div class="v" data-field="production">${production !== undefined ? `v${production}` : '—'}</div>${productionOverride ? overrideChip(productionOverride) : ''}</div>
<div class="stat"><div class="k">Latest version</div><div class="v" data-field="latest">v${head.latestVersion}</div></div>
<div class="stat"><div class="k">Aliases</div><div class="v small">${
    Object.entries(head.aliases)
      .map(([a, s]) => `${a} → v${s.version}`)
      .join(', ') || '—'
  }</div></div>
</div>
<section class="card" aria-labelledby="trend"><h2 id="trend">Metrics across versions</h2>
${
  metrics.length
    ? metrics.map(
        (m) =>
          markup`<figure class="chart"><figcaption><strong>${m}</strong> <span class="sub">point: registered value · whisker: the evaluation’s confidence interval · green: production</span></figcaption>${trendChart(m, metricPoints(view, m))}</figure>`,
      )
    : markup`<p>No metrics recorded.</p>`
}
</section>
<section class="card" aria-labelledby="versions"><h2 id="versions">Versions</h2>
<div class="scroll" tabindex="0"><table><caption class="sr-only">Versions of ${name}</caption>
<thead><tr><th scope="col">Version</th><th scope="col">Created</th><th scope="col">Algorithm</th>${allMetrics.map((m) => markup`<th scope="col">${m}</th>`)}<th scope="col">Run</th><th scope="col">Model digest</th><th scope="col">Downloads</th></tr></thead>
<tbody>${listed.map(
    (v) => markup`<tr data-version="${v.version}">
<td>v${v.version}${v.version === production ? markup` <span class="chip ok">production</span>` : ''}${v.override ? markup` ${overrideChip(v.override)}` : ''}</td>
<td><time datetime="${v.createdAt}">${when(v.createdAt)}</time></td>
<td>${v.algorithm}</td>
${allMetrics.map((m) => markup`<td class="n" data-metric="${m}">${fmt(v.metrics[m])}</td>`)}
<td>${runLink(v.runId, v.tags.pipeline)}</td>
<td><code title="${v.modelDigest}">${short(v.modelDigest)}</code></td>
<td><a href="${evidencePath(name, v.version)}" data-evidence="${v.version}">evidence pack</a> · <a href="${consoleMlflowZipPath(name, v.version)}" data-mlflow-zip="${v.version}">MLflow zip</a></td>
</tr>`,
  )}</tbody></table></div>
${versions.length > listed.length ? markup`<p class="fine">The ${listed.length} newest of ${versions.length} versions.</p>` : ''}
</section>
<section class="card" aria-labelledby="lineage"><h2 id="lineage">Lineage</h2>
<p class="sub">Dataset → run → model → approval → deployment, newest version first.</p>
${listed
  .slice(0, 10)
  .map(
    (v) =>
      markup`<details${v.version === production ? markup` open` : ''}><summary>v${v.version}${v.version === production ? ' (production)' : ''}</summary>${lineage(v, aliasHistory, view.approvals)}</details>`,
  )}
</section>
<section class="card" aria-labelledby="monitoring"><h2 id="monitoring">Monitoring</h2>
${
  view.monitoring
    ? monitoringSection(view.monitoring, ids)
    : markup`<p class="sub">${view.monitoringProblem ? `Monitoring could not be read: ${view.monitoringProblem}` : 'Monitoring was not read.'}</p>`
}
</section>
<section class="card" aria-labelledby="history"><h2 id="history">Alias history</h2>${aliasTimeline(aliasHistory, pipelines)}</section>
<section class="card" aria-labelledby="rollback"><h2 id="rollback">Rollback</h2>${rollbackForm(view, access, frame.csrf)}</section>`;
  return renderPage({ ...frame, title: `Model ${name}`, nav: 'models', body });
}
