import { createHash } from 'node:crypto';
import type { SafeHtml } from '../approval/html';
import { markup, raw } from '../approval/html';
import type { EvidencePack } from './pack';

/**
 * The evidence pack as one self-contained HTML page for people: no script, no external resource
 * (the function sends a CSP that allows neither), and a print stylesheet, so "Print → Save as PDF"
 * gives the document an auditor files.
 */

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;margin:2rem auto;max-width:60rem;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:2px solid #d0d7de;padding-bottom:.2rem}
h3{font-size:1rem;margin:1rem 0 .3rem}.muted{color:#57606a}.ok{color:#1a7f37}.bad{color:#cf222e}
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
.lineage{font-size:1rem}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}table,tr,dl{break-inside:avoid}a{color:inherit;text-decoration:none}
@page{margin:15mm}}
`;

const fmt = (x: number | null | undefined, digits = 4): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : Number(x.toFixed(digits)).toString();
const ci = (pair: [number, number] | null | undefined): string =>
  pair ? `[${fmt(pair[0])}, ${fmt(pair[1])}]` : '—';

function dl(rows: [string, string | number | SafeHtml | null | undefined][]): SafeHtml {
  return markup`<dl>${rows
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => markup`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

const code = (s: string | undefined) => (s ? markup`<code>${s}</code>` : undefined);

export function renderEvidenceHtml(p: EvidencePack): string {
  const m = p.model;
  const e = p.evaluation;
  const d = p.data;
  const body = markup`
<header>
  <h1>Evidence pack: ${m.name} version ${m.version}</h1>
  <p class="muted">Generated ${p.generatedAt} by Sluice (${p.schema}).
  ${m.inProduction ? markup`<strong>In production.</strong>` : markup`Not in production.`}
  ${m.aliases.length ? markup`Aliases: ${m.aliases.join(', ')}.` : ''}</p>
  ${
    m.override
      ? markup`<p class="bad"><strong>${m.override.label}</strong>: deployed by emergency override on ${m.override.at} by ${m.override.by}, without the approval quorum. Reason: ${m.override.reason}. Post-hoc review ${m.override.reviewApprovalId} due ${m.override.reviewDue}${m.override.reviewedAt ? markup`; decided ${m.override.reviewedAt} by ${(m.override.reviewedBy ?? []).join(', ')}` : ''}.</p>`
      : ''
  }
</header>

<section><h2>Purpose and ownership</h2>
${
  p.pipeline
    ? dl([
        ['Pipeline', `${p.pipeline.name} (definition version ${p.pipeline.version})`],
        ['Owner', p.pipeline.owner ?? 'not stated in the pipeline definition'],
        ['Intended use', p.pipeline.intendedUse ?? 'not stated in the pipeline definition'],
        ['Description', p.pipeline.description],
      ])
    : markup`<p class="bad">The pipeline definition this version was trained under is not found.</p>`
}
</section>

<section><h2>Lineage</h2>
<p class="lineage">dataset <code>${p.lineage.dataset.sha256.slice(0, 16)}…</code> → run
${p.lineage.run ? markup`<code>${p.lineage.run.id}</code>` : '(unknown)'} → model ${m.name} v${m.version}
<code>${m.modelDigest.slice(0, 16)}…</code> → ${
    p.lineage.deployments.length
      ? p.lineage.deployments.map((x) => markup`${x.alias} at ${x.at} `)
      : 'not deployed'
  }</p>
${dl([
  ['Dataset SHA-256', code(p.lineage.dataset.sha256)],
  ['Dataset', code(p.lineage.dataset.uri)],
  [
    'Run',
    p.run
      ? `${p.run.id} (${p.run.status}; started ${p.run.createdAt} by ${p.run.trigger.by} via ${p.run.trigger.kind})`
      : undefined,
  ],
  ['Model SHA-256', code(m.modelDigest)],
  ['Artifact', code(m.artifactUri)],
])}
</section>

<section><h2>Data</h2>
${dl([
  ['Rows × columns', d.ingest ? `${d.ingest.rows} × ${d.ingest.columns}` : undefined],
  ['Format, bytes', d.ingest ? `${d.ingest.format}, ${d.ingest.bytes}` : undefined],
  [
    'Validation',
    d.validation
      ? markup`<span class="${d.validation.passed ? 'ok' : 'bad'}">${d.validation.passed ? 'passed' : 'failed'}</span> ${d.validation.headline ?? ''}`
      : undefined,
  ],
  [
    'Drift',
    d.drift ? markup`<span class="${d.drift.drifted ? 'bad' : 'ok'}">${d.drift.summary}</span>` : undefined,
  ],
])}
${
  d.validation?.issues?.length
    ? markup`<h3>Validation issues</h3><table><tr><th>severity</th><th>rule</th><th>message</th></tr>${d.validation.issues.map(
        (i) => markup`<tr><td>${i.severity}</td><td><code>${i.code}</code></td><td>${i.message}</td></tr>`,
      )}</table>`
    : ''
}
${
  d.schemaChanges?.length
    ? markup`<h3>Schema changes since production</h3><table><tr><th>column</th><th>change</th><th>from</th><th>to</th><th>breaking</th></tr>${d.schemaChanges.map(
        (c) =>
          markup`<tr><td>${c.column}</td><td>${c.change}</td><td>${c.from ?? ''}</td><td>${c.to ?? ''}</td><td>${c.breaking ? 'yes' : 'no'}</td></tr>`,
      )}</table>`
    : ''
}
${
  d.profile?.length
    ? markup`<h3>Profile</h3><table><tr><th>column</th><th>type</th><th>rows</th><th>nulls</th><th>distinct</th></tr>${d.profile.map(
        (c) =>
          markup`<tr><td>${c.name}</td><td>${c.type}</td><td>${c.count}</td><td>${c.nulls}</td><td>${c.distinct}</td></tr>`,
      )}</table>`
    : ''
}
</section>

<section><h2>Training</h2>
${dl([
  ['Algorithm', p.training.algorithm],
  ['Backend', p.training.backend],
  ['Job id', code(p.training.jobId)],
  ['Imported from MLflow', code(p.training.importedFrom?.mlflowUri)],
  ['Code digest', code(p.training.codeDigest)],
  ['Iterations', p.training.iterations],
  ['Converged', p.training.converged === undefined ? undefined : String(p.training.converged)],
  ['Spec', code(JSON.stringify(p.training.spec))],
])}
</section>

<section><h2>Evaluation</h2>
${
  e
    ? markup`
<p>Verdict: <strong class="${e.verdict.passed ? 'ok' : 'bad'}">${e.verdict.passed ? 'passed' : 'failed'}</strong>
on ${e.rows} holdout rows; primary metric <code>${e.primaryMetric}</code>${
        e.production ? markup`; compared with production v${e.production.modelVersion}` : ''
      }.</p>
<ul>${e.verdict.reasons.map((r) => markup`<li>${r}</li>`)}</ul>
<table><tr><th>metric</th><th>candidate</th><th>candidate CI</th><th>production</th><th>difference CI</th></tr>
${e.metrics.map(
  (x) =>
    markup`<tr><td>${x.name}${x.name === e.primaryMetric ? ' (primary)' : ''}</td><td>${fmt(x.candidate)}</td><td>${ci(x.candidateCi)}</td><td>${fmt(x.production)}</td><td>${ci(x.ci)}</td></tr>`,
)}</table>
${
  e.slices
    ? markup`<h3>Slices by ${e.slices.column} (${e.slices.metric})</h3><table><tr><th>value</th><th>rows</th><th>candidate</th><th>production</th><th>ok</th></tr>${e.slices.rows.map(
        (s) =>
          markup`<tr><td>${s.value}</td><td>${s.count}</td><td>${fmt(s.candidate)}</td><td>${fmt(s.production)}</td><td class="${s.ok ? 'ok' : 'bad'}">${s.ok ? 'yes' : 'no'}</td></tr>`,
      )}</table>`
    : ''
}
<h3>Policy</h3><p><code>${JSON.stringify(e.policy)}</code></p>`
    : markup`<p class="muted">No evaluation report is recorded for this version.</p>`
}
</section>

<section><h2>Approvals</h2>
${
  p.approvals.length
    ? p.approvals.map(
        (a) => markup`
<h3>${a.approvalId}: ${a.status}</h3>
${dl([
  ['Requested', `${a.requestedAt} by ${a.requestedBy}`],
  [
    'Quorum',
    `${a.quorum.approvals} of ${a.quorum.required} required approvals; ${a.quorum.rejections} rejections; reviewers ${a.quorum.reviewers.join(', ')}`,
  ],
  ['Closed', a.closedAt],
  ['Reasons', a.reasons.join(' ')],
])}
<table><tr><th>reviewer</th><th>decision</th><th>when</th><th>comment</th></tr>${a.decisions.map(
          (x) =>
            markup`<tr data-reviewer="${x.reviewer}"><td>${x.delegate ? markup`<strong>${x.delegate}</strong> on behalf of <strong>${x.reviewer}</strong>` : x.reviewer}${x.signedInAs ? ` (signed in as ${x.signedInAs})` : ''}</td><td>${x.decision}${x.notCounted ? markup`<br><span class="muted">not counted: ${x.notCounted}</span>` : ''}</td><td>${x.decidedAt}</td><td>${x.comment}</td></tr>`,
        )}</table>`,
      )
    : markup`<p class="muted">No approval was requested for this version.</p>`
}
</section>

<section><h2>Deployment</h2>
${
  p.deployments.length
    ? markup`<table><tr><th>when</th><th>alias</th><th>move</th><th>by</th><th>approval</th><th>reason</th></tr>${p.deployments.map(
        (x) =>
          markup`<tr><td>${x.at}</td><td>${x.alias}</td><td>${x.from ?? '—'} → ${x.to ?? '—'}${x.rollback ? ' (rollback)' : ''}</td><td>${x.by}</td><td>${x.approvalRef ?? ''}</td><td>${x.reason}</td></tr>`,
      )}</table>`
    : markup`<p class="muted">Never deployed.</p>`
}
${
  p.lockWaits?.length
    ? markup`<h3>Waits for the deployment lock</h3><table><tr><th>began</th><th>held by</th><th>reason</th><th>ended</th><th>waited</th></tr>${p.lockWaits.map(
        (w) =>
          markup`<tr><td>${w.since}</td><td>${w.holder ? `run ${w.holder.runId} of ${w.holder.pipeline}` : '—'}</td><td>${w.reason ?? ''}</td><td>${w.endedAt ? `${w.outcome === 'granted' ? 'granted' : 'run ended'} ${w.endedAt}` : 'still waiting'}</td><td>${w.waitedSeconds !== undefined ? `${w.waitedSeconds} s` : '—'}</td></tr>`,
      )}</table>`
    : ''
}
</section>

<section><h2>Audit trail</h2>
<p class="muted">Entries for <code>${p.audit.subject}</code>. Chain head when generated: ${
    p.audit.head ? markup`entry ${p.audit.head.seq}, <span class="hash">${p.audit.head.hash}</span>` : 'empty'
  }. Check the whole chain with <code>sluice audit verify</code>.</p>
<table><tr><th>seq</th><th>when</th><th>event</th><th>by</th><th>hash</th></tr>${p.audit.entries.map(
    (x) =>
      markup`<tr><td>${x.seq}</td><td>${x.at}</td><td>${x.kind}</td><td>${x.actor}</td><td class="hash">${x.hash}</td></tr>`,
  )}</table>
</section>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${
    markup`Evidence: ${m.name} v${m.version}`.value
  }</title><style>${raw(STYLE).value}</style></head><body>${body.value}</body></html>`;
}

/** Headers of the HTML answer: no script, nothing loaded, the one <style> allowed by its hash. */
export function evidenceHtmlHeaders(): Record<string, string> {
  const hash = createHash('sha256').update(STYLE).digest('base64');
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; style-src 'sha256-${hash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  };
}
