import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';
import type { ValidationReport } from '../data/checking/report';
import type { ColumnDrift, DriftHistogram } from '../data/profiling/drift';
import type { EvaluationReport } from '../evaluation/report';
import type { ChartIds, IntervalRow } from './charts';
import { histogramPair, intervalChart } from './charts';
import { fmt, words } from './format';

/**
 * The validation and evaluation reports as HTML sections: on the Run page and as the HTML answer of
 * `GET /api/runs/{id}/reports/{kind}`. The numbers are the report's own, formatted by `fmt`.
 */

export { RUN_REPORT_KINDS as REPORT_KINDS, runReportPath as reportPath } from '../http/paths';
export type { RunReportKind as ReportKind } from '../http/paths';

function chip(status: string): SafeHtml {
  const cls =
    status === 'passed' || status === 'stable'
      ? 'ok'
      : status === 'failed' || status === 'drifted'
        ? 'fail'
        : status === 'warning'
          ? 'pending'
          : 'neutral';
  return markup`<span class="chip ${cls}">${words(status)}</span>`;
}

function value(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return fmt(v);
  return String(v);
}

function histogramOf(h: DriftHistogram): { labels: string[]; reference: number[]; current: number[] } {
  if (h.kind === 'category') return h;
  const e = h.edges;
  const labels = h.reference.map((_, i) =>
    i === 0
      ? `< ${fmt(e[0])}`
      : i === e.length
        ? `≥ ${fmt(e[e.length - 1])}`
        : `${fmt(e[i - 1])}–${fmt(e[i])}`,
  );
  return { labels, reference: h.reference, current: h.current };
}

function driftColumn(c: ColumnDrift, ids: ChartIds): SafeHtml {
  const metrics = Object.entries(c.metrics).map(
    ([name, m]) =>
      markup`<li>${name} <strong class="${m.drifted ? 'down' : 'flat'}">${fmt(m.value)}</strong> <span class="sub">(threshold ${fmt(m.threshold)}${m.pValueAdjusted !== undefined ? `, adjusted p ${fmt(m.pValueAdjusted)}` : ''})</span></li>`,
  );
  const h = c.histogram ? histogramOf(c.histogram) : undefined;
  return markup`<div class="stat drift-col">
<div class="k">${c.column} <span class="sub">${c.type}</span></div>
<div>${chip(c.status)}${c.reason ? markup` <span class="sub">${c.reason}</span>` : ''}</div>
${metrics.length ? markup`<ul class="plain">${metrics}</ul>` : ''}
${h ? histogramPair(ids, `${c.column}: reference vs current`, h.labels, h.reference, h.current) : ''}
</div>`;
}

/** The validation report: verdict, failed checks with their first rows and values, schema changes, drift per feature. */
export function validationSection(
  report: ValidationReport,
  ids: ChartIds,
  headingLevel: 2 | 3 = 3,
): SafeHtml {
  const s = report.summary;
  const h = (text: string) => (headingLevel === 2 ? markup`<h2>${text}</h2>` : markup`<h3>${text}</h3>`);
  const violations = report.violations.map(
    (v) => markup`<tr>
<td>${v.rule}${v.column ? markup` <span class="sub">on</span> <code>${v.column}</code>` : ''}</td>
<td>${chip(v.severity === 'error' ? 'failed' : 'warning')}</td>
<td class="n">${v.count}</td>
<td class="mono">${v.firstRows.slice(0, 10).join(', ')}${v.firstRows.length > 10 ? ' …' : ''}</td>
<td class="mono">${(v.examples ?? []).map(value).join(', ') || '—'}</td>
<td>${v.message}</td>
</tr>`,
  );
  const drift = report.drift;
  const changes = report.schemaDiff?.changes ?? [];
  return markup`
<p>${chip(s.status)} ${s.headline}</p>
<div class="grid">
<div class="stat"><div class="k">Rows</div><div class="v">${report.dataset.rows}</div></div>
<div class="stat"><div class="k">Columns</div><div class="v">${report.dataset.columns}</div></div>
<div class="stat"><div class="k">Errors</div><div class="v">${s.errors}</div></div>
<div class="stat"><div class="k">Warnings</div><div class="v">${s.warnings}</div></div>
</div>
${h('Failed checks')}
${
  violations.length === 0
    ? markup`<p class="sub">Every check passed.</p>`
    : markup`<div class="scroll" tabindex="0"><table>
<thead><tr><th scope="col">Check</th><th scope="col">Severity</th><th scope="col" class="n">Rows</th><th scope="col">First rows</th><th scope="col">Values</th><th scope="col">What</th></tr></thead>
<tbody>${violations}</tbody></table></div>`
}
${
  changes.length
    ? markup`${h('Schema changes')}<ul class="plain">${changes.map((c) => markup`<li>${c.breaking ? chip('failed') : chip('warning')} ${c.message}</li>`)}</ul>`
    : ''
}
${h('Drift')}
${
  drift.status === 'skipped'
    ? markup`<p class="sub">Not compared: ${drift.reason}</p>`
    : markup`<p>${chip(drift.status)} ${drift.driftedColumns.length} of ${drift.testedColumns} tested columns drifted (weighted share ${fmt(drift.driftedShare)}); ${drift.rule}.</p>
<div class="grid">${drift.columns.filter((c) => c.status !== 'skipped').map((c) => driftColumn(c, ids))}</div>`
}`;
}

function intervalOf(
  side: {
    intervals?: { metrics: Record<string, { lower: number | null; upper: number | null }> } | undefined;
  },
  metric: string,
): { lower?: number | null; upper?: number | null } {
  const i = side.intervals?.metrics[metric];
  return i ? { lower: i.lower, upper: i.upper } : {};
}

/** The evaluation report: verdict, candidate vs champion per metric with intervals, the per-slice table. */
export function evaluationSection(
  report: EvaluationReport,
  ids: ChartIds,
  headingLevel: 2 | 3 = 3,
): SafeHtml {
  const h = (text: string) => (headingLevel === 2 ? markup`<h2>${text}</h2>` : markup`<h3>${text}</h3>`);
  const champion = report.champion;
  const names = Object.keys(report.candidate.metrics);
  const diff = report.comparison?.difference;
  const rows = names.map((m) => {
    const cand = report.candidate.metrics[m] ?? null;
    const champ = champion ? (champion.metrics[m] ?? null) : null;
    const ci = intervalOf(report.candidate, m);
    const chi = champion ? intervalOf(champion, m) : {};
    const d = cand !== null && champ !== null ? cand - champ : null;
    return markup`<tr data-metric="${m}">
<th scope="row">${m}${m === report.primaryMetric ? markup` <span class="chip neutral">primary</span>` : ''}</th>
${champion ? markup`<td class="n">${fmt(champ)}${chi.lower !== undefined ? markup`<br /><span class="sub">[${fmt(chi.lower)}, ${fmt(chi.upper)}]</span>` : ''}</td>` : ''}
<td class="n"><strong>${fmt(cand)}</strong>${ci.lower !== undefined ? markup`<br /><span class="sub">[${fmt(ci.lower)}, ${fmt(ci.upper)}]</span>` : ''}</td>
${champion ? markup`<td class="n">${d === null ? '—' : (d > 0 ? '+' : '') + fmt(d)}${m === report.comparison?.metric && diff ? markup`<br /><span class="sub">[${fmt(diff.lower)}, ${fmt(diff.upper)}]</span>` : ''}</td>` : ''}
</tr>`;
  });
  const charts = names.map((m) => {
    const r: IntervalRow[] = [];
    if (champion)
      r.push({
        label: 'champion',
        value: champion.metrics[m] ?? null,
        ...intervalOf(champion, m),
        role: 'champion',
      });
    r.push({
      label: 'candidate',
      value: report.candidate.metrics[m] ?? null,
      ...intervalOf(report.candidate, m),
      role: 'candidate',
    });
    return markup`<figure class="stat"><figcaption class="k">${m}</figcaption>${intervalChart(ids, `${m}: ${champion ? 'candidate vs champion' : 'candidate'}`, r)}</figure>`;
  });
  const slices = report.slices.map(
    (s) => markup`<tr>
<td>${s.column} = <strong>${s.value}</strong></td><td>${s.metric}</td><td class="n">${s.rows}</td>
${champion ? markup`<td class="n">${fmt(s.champion)}</td>` : ''}
<td class="n">${fmt(s.candidate)}</td>
${champion ? markup`<td class="n">${s.candidate !== null && s.champion !== null ? (s.candidate - s.champion > 0 ? '+' : '') + fmt(s.candidate - s.champion) : '—'}</td>` : ''}
</tr>`,
  );
  const failed = report.verdict.reasons.filter((r) => !r.passed);
  return markup`
<p>${chip(report.verdict.passed ? 'passed' : 'failed')} ${report.task} on <code>${report.target}</code>, ${report.rows} rows${report.rowsDropped ? `, ${report.rowsDropped} dropped` : ''}; ${champion ? `champion v${champion.version ?? '?'}` : 'no champion (first model)'}.</p>
${failed.length ? markup`<ul class="plain">${failed.map((r) => markup`<li>${chip('failed')} ${r.message}</li>`)}</ul>` : ''}
${h('Metrics')}
<div class="scroll" tabindex="0"><table class="metrics">
<thead><tr><th scope="col">Metric</th>${champion ? markup`<th scope="col" class="n">Champion</th>` : ''}<th scope="col" class="n">Candidate</th>${champion ? markup`<th scope="col" class="n">Difference</th>` : ''}</tr></thead>
<tbody>${rows}</tbody></table></div>
${diff ? markup`<p class="sub">Intervals: ${Math.round(diff.confidence * 100)}% paired bootstrap (${diff.resamples} resamples) for the difference in ${report.comparison?.metric}; per-model intervals where the report has them.</p>` : ''}
<div class="grid">${charts}</div>
${h('Per slice')}
${
  slices.length
    ? markup`<div class="scroll" tabindex="0"><table class="slices"><thead><tr><th scope="col">Slice</th><th scope="col">Metric</th><th scope="col" class="n">Rows</th>${champion ? markup`<th scope="col" class="n">Champion</th>` : ''}<th scope="col" class="n">Candidate</th>${champion ? markup`<th scope="col" class="n">Difference</th>` : ''}</tr></thead><tbody>${slices}</tbody></table></div>`
    : markup`<p class="sub">The policy names no slices.</p>`
}`;
}
