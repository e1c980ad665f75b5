import type { SafeHtml } from '../../approval/html';
import { markup } from '../../approval/html';
import type { MonitoringDoc, ProposalDoc } from '../../monitoring/records';
import type { MonitoringStore } from '../../monitoring/store';
import type { BarRow, ChartIds } from '../charts';
import { barChart, intervalChart } from '../charts';
import { duration, fmt, when, words } from '../format';
import { runPagePath } from '../paths';

/**
 * The model page's Monitoring section (issue 20, docs/monitoring.md): what `GET
 * /api/models/{name}/monitoring` answers, drawn for people. The monitoring timer keeps one document
 * per model, its latest window, so the section shows that window: volume, error rate, latency p50
 * and p99, feature drift per feature against its threshold, prediction drift (PSI against the
 * holdout predictions), the live metric with its CI once feedback labels arrived, the finding, and
 * every retraining proposal with its decision. Charts are server-drawn SVG (lib/console/charts.ts);
 * the numbers are also in the tables, so no chart is the only way to read them.
 */

/** Proposals listed (newest first). */
export const MAX_LISTED_PROPOSALS = 20;

export interface MonitoringView {
  doc?: MonitoringDoc;
  proposals: ProposalDoc[];
}

/** The monitoring document and proposals of a model; a part that cannot be read is left out by the caller. */
export async function loadMonitoring(
  store: Pick<MonitoringStore, 'get' | 'proposals'>,
  modelName: string,
): Promise<MonitoringView> {
  const [doc, proposals] = await Promise.all([store.get(modelName), store.proposals(modelName)]);
  return { ...(doc ? { doc } : {}), proposals };
}

const pct = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '—' : `${fmt(v * 100)} %`;
const ms = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '—' : `${fmt(v)} ms`;

/**
 * One bar per compared feature: the drift metric closest to (or furthest past) its threshold, as
 * value against threshold. Columns not compared (hashed, dropped, too few rows) have no bar.
 */
export function featureDriftRows(doc: MonitoringDoc): (BarRow & { metric?: string })[] {
  return doc.featureDrift.columns.map((c) => {
    const worst = Object.entries(c.metrics).sort(
      ([, a], [, b]) => b.value / (b.threshold || 1) - a.value / (a.threshold || 1),
    )[0];
    return worst
      ? {
          label: c.column,
          value: worst[1].value,
          limit: worst[1].threshold,
          bad: worst[1].drifted,
          metric: worst[0],
        }
      : { label: c.column, value: null };
  });
}

function trafficPart(doc: MonitoringDoc, ids: ChartIds): SafeHtml {
  const t = doc.traffic;
  return markup`<div class="grid">
<div class="stat"><div class="k">Volume</div><div class="v" data-mon="requests">${t.requests}</div><div class="sub">requests (${doc.samples.requests} sampled, ${doc.samples.rows} rows)</div></div>
<div class="stat"><div class="k">Error rate</div><div class="v" data-mon="errorRate">${pct(t.errorRate)}</div><div class="sub">${t.errors} errors</div></div>
<div class="stat"><div class="k">Latency p50</div><div class="v" data-mon="p50">${ms(t.latencyP50Ms)}</div></div>
<div class="stat"><div class="k">Latency p99</div><div class="v" data-mon="p99">${ms(t.latencyP99Ms)}</div></div>
</div>
${
  t.latencyP50Ms !== null || t.latencyP99Ms !== null
    ? barChart(
        ids,
        'Latency',
        [
          { label: 'p50', value: t.latencyP50Ms },
          { label: 'p99', value: t.latencyP99Ms },
        ],
        ' ms',
      )
    : ''
}`;
}

function featureDriftPart(doc: MonitoringDoc, ids: ChartIds): SafeHtml {
  const f = doc.featureDrift;
  const rows = featureDriftRows(doc);
  const statusClass = f.status === 'drifted' ? 'fail' : f.status === 'stable' ? 'ok' : 'neutral';
  return markup`<h3>Feature drift</h3>
<p><span class="chip ${statusClass}" data-mon="featureDrift">${words(f.status)}</span> ${pct(f.driftedShare)} of features drifted · rule: ${f.rule}${f.reason ? markup` · ${f.reason}` : ''}</p>
${rows.some((r) => r.value !== null) ? barChart(ids, 'Feature drift against thresholds', rows) : ''}
<div class="scroll" tabindex="0"><table class="drift"><caption class="sr-only">Feature drift per feature</caption>
<thead><tr><th scope="col">Feature</th><th scope="col">Status</th><th scope="col">Metrics (value / threshold)</th><th scope="col" class="n">Reference rows</th><th scope="col" class="n">Live rows</th></tr></thead>
<tbody>${f.columns.map(
    (c) => markup`<tr data-feature="${c.column}">
<td>${c.column}${f.criticalDrifted.includes(c.column) ? markup` <span class="chip fail">critical</span>` : ''}</td>
<td>${words(c.status)}${c.reason ? markup`<div class="sub">${c.reason}</div>` : ''}</td>
<td>${
      Object.keys(c.metrics).length
        ? Object.entries(c.metrics).map(
            ([k, m]) =>
              markup`<span data-metric="${k}" data-value="${m.value}"${m.drifted ? markup` class="down"` : ''}>${k} ${fmt(m.value)} / ${fmt(m.threshold)}</span> `,
          )
        : '—'
    }</td>
<td class="n">${c.referenceCount}</td>
<td class="n">${c.currentCount}</td>
</tr>`,
  )}</tbody></table></div>`;
}

function livePart(doc: MonitoringDoc, ids: ChartIds): SafeHtml {
  const l = doc.live;
  if (!l || l.labels === 0) {
    return markup`<h3>Live metric</h3><p class="sub" data-mon="live">No feedback labels yet: send true labels to POST /api/models/{name}/feedback and the live ${l?.metric ?? 'metric'} appears here with its confidence interval.</p>`;
  }
  const name = l.metric === 'mae' ? 'mean absolute error' : l.metric;
  return markup`<h3>Live metric</h3>
<p data-mon="live" data-value="${l.value ?? ''}">Live ${name} <strong>${fmt(l.value)}</strong> (${fmt(l.ci.confidence * 100)} % CI ${fmt(l.ci.lower)} to ${fmt(l.ci.upper)}) from ${l.labels} labels since ${when(l.since)}.</p>
${intervalChart(ids, `Live ${name}`, [
  { label: 'live', value: l.value, lower: l.ci.lower, upper: l.ci.upper, role: 'candidate' },
])}`;
}

function proposalsPart(proposals: readonly ProposalDoc[], pipelineOf: (p: ProposalDoc) => string): SafeHtml {
  const listed = [...proposals]
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
    .slice(0, MAX_LISTED_PROPOSALS);
  if (listed.length === 0)
    return markup`<h3>Retraining proposals</h3><p class="sub">No retraining was proposed.</p>`;
  return markup`<h3>Retraining proposals</h3>
<div class="scroll" tabindex="0"><table class="proposals"><caption class="sr-only">Retraining proposals and their decisions</caption>
<thead><tr><th scope="col">Proposed</th><th scope="col">State</th><th scope="col">Why</th><th scope="col">Decision</th></tr></thead>
<tbody>${listed.map((p) => {
    const d = p.decision;
    return markup`<tr data-proposal="${p.id}" data-state="${p.state}">
<td><time datetime="${p.createdAt}">${when(p.createdAt)}</time><div class="sub">v${p.evidence.version ?? '—'} · ${p.evidence.samples} rows</div></td>
<td><span class="chip ${p.state === 'accepted' ? 'ok' : p.state === 'dismissed' ? 'neutral' : 'pending'}">${p.state}</span></td>
<td>${p.evidence.reasons.join('; ') || '—'}${p.evidence.predictionPsi !== null ? markup`<div class="sub">prediction PSI ${fmt(p.evidence.predictionPsi)}</div>` : ''}</td>
<td>${
      d
        ? markup`${d.decision === 'accept' ? 'accepted' : 'dismissed'} by ${d.by} <time datetime="${d.at}">${when(d.at)}</time>${d.reason ? markup`: “${d.reason}”` : ''}${d.runId ? markup` · run <a href="${runPagePath(d.runId, pipelineOf(p))}">${d.runId}</a>` : ''}`
        : markup`<span class="sub">waiting for ${p.reviewers.join(', ') || 'the reviewers'}</span>`
    }</td>
</tr>`;
  })}</tbody></table></div>`;
}

/** The Monitoring section's content. */
export function monitoringSection(view: MonitoringView, ids: ChartIds): SafeHtml {
  const doc = view.doc;
  const proposals = proposalsPart(view.proposals, (p) => p.pipeline);
  if (!doc) {
    return markup`<p class="sub" data-mon="none">No monitoring window has been computed yet: the monitoring timer computes one once predict traffic is sampled (docs/monitoring.md).</p>${proposals}`;
  }
  const span = Date.parse(doc.window.to) - Date.parse(doc.window.from);
  const p = doc.predictionDrift;
  return markup`<p class="sub">Latest window: <time datetime="${doc.window.from}">${when(doc.window.from)}</time> to <time datetime="${doc.window.to}">${when(doc.window.to)}</time> (${Number.isFinite(span) ? duration(span) : '—'}) for version ${doc.version === null ? '—' : `v${doc.version}`}, computed ${when(doc.computedAt)}.</p>
${
  doc.finding.drifted
    ? markup`<div class="notice error" role="status" data-mon="finding"><strong>Drift finding</strong><div>${doc.finding.reasons.join('; ')}${doc.finding.proposal?.id ? markup` · proposal <code>${doc.finding.proposal.id}</code>` : ''}${doc.finding.proposal?.skipped ? markup` · no proposal: ${words(doc.finding.proposal.skipped)}${doc.finding.proposal.detail ? ` (${doc.finding.proposal.detail})` : ''}` : ''}</div></div>`
    : doc.finding.reasons.length
      ? markup`<p class="sub" data-mon="finding">Not judged: ${doc.finding.reasons.join('; ')}</p>`
      : markup`<p data-mon="finding"><span class="chip ok">no drift</span> within the pipeline’s monitoring policy.</p>`
}
${trafficPart(doc, ids)}
${featureDriftPart(doc, ids)}
<h3>Prediction drift</h3>
<p data-mon="predictionPsi" data-value="${p.psi ?? ''}">PSI of live predictions against the holdout predictions: <strong>${fmt(p.psi)}</strong>${p.reason ? markup` <span class="sub">${p.reason}</span>` : ''}</p>
${livePart(doc, ids)}
${proposals}`;
}
