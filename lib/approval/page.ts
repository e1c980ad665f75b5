import { createHash } from 'node:crypto';
import type { Verdict } from './policy';
import type { ApprovalDecision, ApprovalRecord, Evidence } from '../contracts/approvalRecord';
import type { ApprovalView } from './service';
import type { SafeHtml } from './html';
import { markup, raw } from './html';
import { isRunReportKind, runReportPath } from '../http/paths';

/**
 * The approval page: everything a reviewer needs to decide, server-rendered, no JavaScript, no
 * external assets. GET renders it; the form POSTs a decision to the same URL.
 */

export interface ApprovalPageView {
  record: ApprovalRecord;
  decisions: readonly ApprovalDecision[];
  verdict: Verdict;
  /** The reviewer the link was made for. */
  reviewer: string;
  /** Set on a delegate's link: who decides on `reviewer`'s behalf. */
  delegate?: string;
  linkExpiresAt: Date;
  now: Date;
  /** Where the form posts (the page's own path). */
  actionPath: string;
  requireSignin: boolean;
  /** A banner after a POST (or an error explaining why the decision was refused). */
  notice?: { kind: 'success' | 'error' | 'info'; title: string; text?: string };
}

/** The approval page's style; the console (lib/console) builds its stylesheet on it, so both look alike. */
export const APPROVAL_CSS = `
:root{--ink:#1b1f24;--muted:#5b6573;--line:#dde1e6;--bg:#f5f6f8;--card:#fff;--good:#1a7f37;--good-bg:#e7f5ec;--bad:#c4262e;--bad-bg:#fdecec;--warn:#9a6700;--warn-bg:#fff6da;--accent:#2352c7;--accent-bg:#eaf0fd}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:960px;margin:0 auto;padding:16px}
header.top{background:var(--card);border-bottom:1px solid var(--line)}
header.top .in{max-width:960px;margin:0 auto;padding:16px;display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;justify-content:space-between}
.brand{font-weight:700;letter-spacing:.02em;color:var(--accent)}
h1{font-size:1.45rem;line-height:1.25;margin:4px 0 2px}
h2{font-size:1.05rem;margin:0 0 10px}
.sub{color:var(--muted);font-size:.92rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;margin:14px 0}
.chip{display:inline-block;border-radius:999px;padding:2px 10px;font-size:.8rem;font-weight:600;border:1px solid transparent;white-space:nowrap}
.chip.pending{background:var(--warn-bg);color:var(--warn);border-color:#f1d48a}
.chip.approved,.chip.ok{background:var(--good-bg);color:var(--good);border-color:#a8dcb8}
.chip.rejected,.chip.expired,.chip.fail{background:var(--bad-bg);color:var(--bad);border-color:#f3b4b7}
.chip.neutral,.chip.withdrawn{background:#eef0f3;color:var(--muted);border-color:var(--line)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px}
.stat{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fbfcfd}
.stat .k{color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em}
.stat .v{font-size:1.15rem;font-weight:650;margin-top:2px}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{padding:7px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.up{color:var(--good);font-weight:600}.down{color:var(--bad);font-weight:600}.flat{color:var(--muted)}
.ci{display:block;position:relative;height:10px;min-width:120px;background:linear-gradient(90deg,transparent calc(50% - 1px),#9aa4b1 calc(50% - 1px),#9aa4b1 calc(50% + 1px),transparent calc(50% + 1px));margin-top:4px}
.ci i{position:absolute;top:2px;height:6px;border-radius:3px;background:var(--muted)}
.ci i.up{background:var(--good)}.ci i.down{background:var(--bad)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem;overflow-wrap:anywhere}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:6px 14px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;min-width:0}
ul.plain{list-style:none;padding:0;margin:0}
ul.plain li{padding:6px 0;border-bottom:1px solid var(--line)}ul.plain li:last-child{border-bottom:0}
.notice{border-radius:10px;padding:12px 16px;margin:14px 0;border:1px solid}
.notice.success{background:var(--good-bg);border-color:#a8dcb8}.notice.error{background:var(--bad-bg);border-color:#f3b4b7}.notice.info{background:var(--accent-bg);border-color:#bccdf5}
.notice strong{display:block}
form.decide label{display:block;font-weight:600;margin-bottom:6px}
form.decide textarea{width:100%;min-height:90px;border:1px solid var(--line);border-radius:8px;padding:10px;font:inherit}
.buttons{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}
button{font:inherit;font-weight:650;border-radius:8px;padding:11px 22px;border:1px solid transparent;cursor:pointer;min-width:140px}
button.approve{background:var(--good);color:#fff}button.reject{background:#fff;color:var(--bad);border-color:var(--bad)}
button:disabled{opacity:.45;cursor:not-allowed}
.fine{color:var(--muted);font-size:.85rem;margin-top:10px}
.gap{margin-top:14px}
.right{display:flex;flex-direction:column;align-items:flex-end;gap:6px}.jump{color:var(--accent);font-size:.9rem;font-weight:600;text-decoration:none}
@media (max-width:560px){.right{flex-direction:row;align-items:center}}.stat .v.small{font-size:1rem}
footer{color:var(--muted);font-size:.8rem;text-align:center;padding:20px 16px 32px}
@media (max-width:560px){h1{font-size:1.2rem}main{padding:10px}.card{padding:12px}button{flex:1 1 100%}dl.kv{grid-template-columns:1fr}dl.kv dt{margin-top:6px}}
`;

/** The page runs no script and loads nothing; its one <style> element is allowed by hash. */
function csp(css: string): string {
  const hash = createHash('sha256').update(css).digest('base64');
  return `default-src 'none'; style-src 'sha256-${hash}'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;
}

/** Response headers for every approval page answer (the token is in the URL: never leak it). */
export const APPROVAL_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'x-robots-tag': 'noindex, nofollow',
};

export interface RenderedPage {
  body: string;
  headers: Record<string, string>;
}

/** Per-render CSS (the CI bar positions), so no element needs a `style` attribute CSP would block. */
class Styles {
  readonly rules: string[] = [];
  add(rule: (cls: string) => string): string {
    const cls = `d${this.rules.length}`;
    this.rules.push(rule(cls));
    return cls;
  }
}

function page(title: string, styles: Styles, content: SafeHtml): RenderedPage {
  const css = APPROVAL_CSS + styles.rules.join('\n');
  const body = markup`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width,initial-scale=1" />
        <meta name="robots" content="noindex,nofollow" />
        <meta name="referrer" content="no-referrer" />
        <title>${title}</title>
        <style>${raw(css)}</style>
      </head>
      <body>
        ${content}
        <footer>
          Opening this page changes nothing. Only the Approve or Reject button records a decision.
        </footer>
      </body>
    </html>`;
  return { body: body.value, headers: { ...APPROVAL_PAGE_HEADERS, 'content-security-policy': csp(css) } };
}

function fmt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const a = Math.abs(n);
  if (a !== 0 && (a < 0.001 || a >= 1e6)) return n.toExponential(2);
  return Number(n.toPrecision(4)).toString();
}
function signed(n: number): string {
  return (n > 0 ? '+' : n < 0 ? '−' : '±') + fmt(Math.abs(n));
}
function when(iso: string | undefined): string {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}
function duration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}

/** Direction of a change for the reader: better, worse, or not distinguishable from zero. */
function direction(
  diff: number,
  ci: readonly [number, number] | null,
  higherIsBetter: boolean,
): 'up' | 'down' | 'flat' {
  if (ci && ci[0] <= 0 && ci[1] >= 0) return 'flat';
  if (diff === 0) return 'flat';
  return diff > 0 === higherIsBetter ? 'up' : 'down';
}

function ciBar(ci: readonly [number, number], dir: string, styles: Styles): SafeHtml {
  // Symmetric scale around zero so the reader sees at a glance whether the interval crosses it.
  const span = Math.max(Math.abs(ci[0]), Math.abs(ci[1])) || 1;
  const left = 50 + (ci[0] / span) * 48;
  const right = 50 + (ci[1] / span) * 48;
  const cls = styles.add(
    (c) => `.${c} i{left:${left.toFixed(1)}%;width:${Math.max(1, right - left).toFixed(1)}%}`,
  );
  return markup`<span class="ci ${cls}" aria-hidden="true"><i class="${dir}"></i></span>`;
}

function metricsTable(e: Evidence, styles: Styles): SafeHtml {
  if (e.metrics.length === 0) return markup`<p class="sub">No metrics were reported.</p>`;
  const hasProd = e.metrics.some((m) => m.production !== null);
  const withOwn = e.metrics.find((m) => m.candidateCi || m.productionCi);
  const rows = e.metrics.map((m) => {
    const diff = m.production === null ? null : m.candidate - m.production;
    const dir = diff === null ? 'flat' : direction(diff, m.ci, m.higherIsBetter);
    const level = m.ciLevel ? `${Math.round(m.ciLevel * 100)}% CI` : 'CI';
    const absLevel = m.absoluteCiLevel ? `${Math.round(m.absoluteCiLevel * 100)}% CI` : 'CI';
    // Each absolute value with its own interval under it, when the report has one.
    const own = (ci: readonly [number, number] | undefined) =>
      ci
        ? markup`<br /><span class="sub ival" title="${absLevel}">[${fmt(ci[0])}, ${fmt(ci[1])}]</span>`
        : '';
    return markup`<tr>
      <td>
        ${m.name}${m.name === e.primaryMetric ? markup` <span class="chip neutral">primary</span>` : ''}${m.higherIsBetter ? '' : markup` <span class="sub">(lower is better)</span>`}
      </td>
      ${hasProd ? markup`<td class="n">${fmt(m.production)}${own(m.productionCi)}</td>` : ''}
      <td class="n"><strong>${fmt(m.candidate)}</strong>${own(m.candidateCi)}</td>
      ${hasProd ? markup`<td class="n"><span class="${dir}">${diff === null ? '—' : signed(diff)}</span></td>` : ''}
      ${hasProd ? markup`<td class="n">${m.ci ? markup`<span title="${level}">[${signed(m.ci[0])}, ${signed(m.ci[1])}]</span>${ciBar(m.ci, dir, styles)}` : '—'}</td>` : ''}
    </tr>`;
  });
  return markup`<div class="scroll">
      <table>
        <thead>
          <tr>
            <th>Metric</th>
            ${hasProd ? markup`<th class="n">Production</th>` : ''}
            <th class="n">Candidate</th>
            ${
              hasProd
                ? markup`<th class="n">Δ</th>
                    <th class="n">CI of Δ</th>`
                : ''
            }
          </tr>
        </thead>
        <tbody>
          ${rows}
        </tbody>
      </table>
    </div>
    ${
      withOwn
        ? markup`<p class="fine">In brackets under a value: its ${withOwn.absoluteCiLevel ? `${Math.round(withOwn.absoluteCiLevel * 100)}% ` : ''}bootstrap interval on the evaluation rows.</p>`
        : ''
    }
    ${hasProd ? '' : markup`<p class="fine">This is the pipeline's first model: there is no production model to compare with.</p>`}`;
}

function slicesTable(e: Evidence): SafeHtml {
  const s = e.slices;
  if (!s || s.rows.length === 0) return markup`<p class="sub">No per-slice breakdown was computed.</p>`;
  return markup`<p class="sub">${s.metric} by <code>${s.column}</code></p>
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th>${s.column}</th>
            <th class="n">Rows</th>
            <th class="n">Production</th>
            <th class="n">Candidate</th>
            <th class="n">Δ</th>
            <th>Guard</th>
          </tr>
        </thead>
        <tbody>
          ${s.rows.map((r) => {
            const diff = r.candidate !== null && r.production !== null ? r.candidate - r.production : null;
            return markup`<tr>
              <td>${r.value}</td>
              <td class="n">${r.count}</td>
              <td class="n">${fmt(r.production)}</td>
              <td class="n">${fmt(r.candidate)}</td>
              <td class="n">${diff === null ? '—' : signed(diff)}</td>
              <td>
                ${r.ok ? markup`<span class="chip ok">ok</span>` : markup`<span class="chip fail">worse than allowed</span>`}
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>`;
}

/**
 * The drift header, from the same evidence as the table below it: the drifted columns the record
 * names (or, on older records, the columns the table marks drifted), so it never says "no drift"
 * above a drifted row. A drifted dataset (the verdict) is red; drifted columns alone are a warning.
 */
export function driftHeader(d: NonNullable<Evidence['drift']>): {
  chip: 'fail' | 'pending' | 'ok';
  text: string;
  columns: string[];
} {
  const fromTable = [...new Set(d.features.filter((f) => f.drifted).map((f) => f.feature))];
  const columns = d.columns ?? fromTable;
  const count = d.driftedCount ?? columns.length;
  // The record lists every drifted column: a metric over its threshold in another column did not
  // make that column drift (columnRule "all"). Otherwise every such row counts.
  const complete = d.columns !== undefined && count === d.columns.length;
  const drifted = complete ? columns : [...new Set([...columns, ...fromTable])];
  if (count === 0 && !d.drifted) return { chip: 'ok', text: 'no drift', columns: drifted };
  if (count === 0) return { chip: 'fail', text: 'drift detected', columns: drifted };
  const tested = d.tested ?? new Set(d.features.map((f) => f.feature)).size;
  const names =
    columns.slice(0, 5).join(', ') + (count > 5 ? ` and ${count - Math.min(5, columns.length)} more` : '');
  return {
    chip: d.drifted ? 'fail' : 'pending',
    text: `drift in ${count} of ${tested} column${tested === 1 ? '' : 's'}: ${names}`,
    columns: drifted,
  };
}

function dataSection(e: Evidence): SafeHtml {
  const v = e.validation;
  const d = e.drift;
  const header = d ? driftHeader(d) : undefined;
  return markup`<div class="grid">
      <div class="stat">
        <div class="k">Data validation</div>
        <div class="v">
          ${v ? (v.passed ? (v.warning ? markup`<span class="chip pending">passed with warnings</span>` : markup`<span class="chip ok">passed</span>`) : markup`<span class="chip fail">failed</span>`) : markup`<span class="chip neutral">not run</span>`}
        </div>
        ${v?.warning ? markup`<div class="sub">${v.warning}</div>` : ''}
        ${v ? markup`<div class="sub">${v.rows !== undefined ? `${v.rows.toLocaleString('en-US')} rows` : ''}${v.checks !== undefined ? ` · ${v.checks} checks` : ''}</div>` : ''}
      </div>
      <div class="stat">
        <div class="k">Drift vs reference</div>
        <div class="v">
          ${header ? markup`<span class="chip ${header.chip}" data-drift-header>${header.text}</span>` : markup`<span class="chip neutral">not measured</span>`}
        </div>
        ${d?.summary ? markup`<div class="sub">${d.summary}</div>` : ''}
      </div>
    </div>
    ${
      v && v.issues.length > 0
        ? markup`<h2 class="gap">Validation findings</h2>
            <ul class="plain">
              ${v.issues.map((i) => markup`<li><span class="chip ${i.severity === 'error' ? 'fail' : 'neutral'}">${i.severity}</span> <code>${i.code}</code> ${i.message}</li>`)}
            </ul>`
        : ''
    }
    ${
      d && d.features.length > 0
        ? markup`<div class="scroll gap">
            <table>
              <thead>
                <tr>
                  <th>Feature</th>
                  <th>Statistic</th>
                  <th class="n">Value</th>
                  <th class="n">Threshold</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                ${d.features.map(
                  (f) =>
                    markup`<tr>
                      <td><code>${f.feature}</code></td>
                      <td>${f.statistic}</td>
                      <td class="n">${fmt(f.value)}</td>
                      <td class="n">${fmt(f.threshold)}</td>
                      <td>
                        ${f.drifted ? (header!.columns.includes(f.feature) ? markup`<span class="chip fail">drifted</span>` : markup`<span class="chip neutral">over threshold</span>`) : markup`<span class="chip ok">ok</span>`}
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </div>`
        : ''
    }`;
}

function schemaSection(e: Evidence): SafeHtml {
  if (e.schemaDiff.length === 0)
    return markup`<p class="sub">
      The dataset schema is unchanged from the production model's training data.
    </p>`;
  return markup`<div class="scroll">
    <table>
      <thead>
        <tr>
          <th>Change</th>
          <th>Column</th>
          <th>From</th>
          <th>To</th>
        </tr>
      </thead>
      <tbody>
        ${e.schemaDiff.map(
          (c) =>
            markup`<tr>
              <td>
                <span
                  class="chip ${c.breaking === true || (c.breaking === undefined && (c.change === 'removed' || c.change === 'type_changed')) ? 'fail' : 'neutral'}"
                  >${c.change.replace('_', ' ')}${c.breaking ? ' · breaking' : ''}</span
                >
              </td>
              <td><code>${c.column}</code></td>
              <td>${c.from ?? '—'}</td>
              <td>${c.to ?? '—'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function timelineSection(e: Evidence): SafeHtml {
  if (e.timeline.length === 0) return markup`<p class="sub">No timeline was recorded.</p>`;
  return markup`<div class="scroll">
    <table>
      <thead>
        <tr>
          <th>Step</th>
          <th>Status</th>
          <th>Started</th>
          <th class="n">Took</th>
        </tr>
      </thead>
      <tbody>
        ${e.timeline.map((t) => {
          const took =
            t.startedAt && t.endedAt ? duration(Date.parse(t.endedAt) - Date.parse(t.startedAt)) : '—';
          const cls = t.status === 'succeeded' ? 'ok' : t.status === 'failed' ? 'fail' : 'neutral';
          return markup`<tr>
            <td>${t.step}</td>
            <td><span class="chip ${cls}">${t.status}</span></td>
            <td>${when(t.startedAt)}</td>
            <td class="n">${took}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </div>`;
}

function decisionsSection(view: ApprovalPageView): SafeHtml {
  const { decisions, verdict } = view;
  const items = [...decisions]
    .sort((a, b) => a.decidedAt.localeCompare(b.decidedAt))
    .map(
      (d) =>
        markup`<li>
          <span class="chip ${d.decision === 'approve' ? 'approved' : 'rejected'}"
            >${d.decision === 'approve' ? 'approved' : 'rejected'}</span
          >
          ${d.delegate ? markup`<strong>${d.delegate}</strong> on behalf of <strong>${d.reviewer}</strong>` : markup`<strong>${d.reviewer}</strong>`}
          <span class="sub">${when(d.decidedAt)}${d.stage === 'escalated' ? ' · escalation' : ''}</span>
          ${d.comment ? markup`<div>${d.comment}</div>` : ''}
          ${verdict.ignored.some((i) => i.reviewer === d.reviewer) ? markup`<div class="sub">Not counted: ${verdict.ignored.filter((i) => i.reviewer === d.reviewer).map((i) => i.reason)}</div>` : ''}
        </li>`,
    );
  return markup`<p class="sub">
      ${verdict.approvedBy.length} of ${verdict.required} required
      approvals${verdict.waitingFor.length > 0 && view.record.status === 'pending' ? markup` · waiting for ${verdict.waitingFor.join(', ')}` : ''}.
      Any rejection rejects.
    </p>
    ${
      items.length > 0
        ? markup`<ul class="plain">
            ${items}
          </ul>`
        : markup`<p>No one has decided yet.</p>`
    }`;
}

function formSection(view: ApprovalPageView): SafeHtml {
  const { record, reviewer, decisions } = view;
  const mine = decisions.find((d) => d.reviewer === reviewer);
  if (mine) {
    return markup`<p>
      You <strong>${mine.decision === 'approve' ? 'approved' : 'rejected'}</strong> this candidate at
      ${when(mine.decidedAt)}. A decision cannot be changed; ask the requester to start a new run if needed.
    </p>`;
  }
  if (record.status === 'withdrawn') {
    return markup`<p><strong>${record.withdrawn?.message ?? 'This run ended; no decision can be recorded.'}</strong></p>`;
  }
  if (record.status !== 'pending') {
    return markup`<p>
      This approval is closed (<strong>${record.status}</strong>); no more decisions are taken.
    </p>`;
  }
  const isRequester = (view.delegate ?? reviewer) === record.requestedBy.toLowerCase();
  return markup`<form class="decide" method="post" action="${view.actionPath}">
    <input type="hidden" name="modelDigest" value="${record.candidate.modelDigest}" />
    <input type="hidden" name="datasetDigest" value="${record.candidate.datasetDigest}" />
    <label for="comment"
      >Comment
      <span class="sub">(shown to the requester and the other reviewers; required to reject)</span></label
    >
    <textarea
      id="comment"
      name="comment"
      maxlength="2000"
      placeholder="What did you check? Why approve or reject?"
    ></textarea>
    <div class="buttons">
      <button class="approve" type="submit" name="decision" value="approve"${isRequester ? raw(' disabled') : ''}>Approve</button>
      <button class="reject" type="submit" name="decision" value="reject">Reject</button>
    </div>
    ${isRequester ? markup`<p class="fine">You started this run, so you may reject it but not approve it.</p>` : ''}
    <p class="fine">
      Your decision applies to exactly this model (<code>${record.candidate.modelDigest.slice(0, 12)}…</code>)
      and dataset (<code>${record.candidate.datasetDigest.slice(0, 12)}…</code>). If the candidate changes, it
      is refused.${view.requireSignin ? ' You will need to be signed in as the reviewer.' : ''}
    </p>
  </form>`;
}

/** The page of an approval loaded through a reviewer's link (`loadApproval`), posting back to `actionPath`. */
export function renderLoadedApproval(
  view: ApprovalView,
  options: Pick<ApprovalPageView, 'actionPath' | 'requireSignin' | 'notice'>,
): RenderedPage {
  return renderApprovalPage({
    record: view.state.record,
    decisions: view.state.decisions,
    verdict: view.verdict,
    reviewer: view.claims.reviewer,
    ...(view.claims.delegate ? { delegate: view.claims.delegate } : {}),
    linkExpiresAt: view.claims.expiresAt,
    now: view.now,
    ...options,
  });
}

/** Renders the full page. Every value from the record or the request is escaped by `markup`. */
export function renderApprovalPage(view: ApprovalPageView): RenderedPage {
  const styles = new Styles();
  const { record: r, verdict, now } = view;
  const e = r.evidence;
  const c = r.candidate;
  const primary = e.metrics.find((m) => m.name === e.primaryMetric) ?? e.metrics[0];
  const left = Date.parse(r.deadline) - now.getTime();
  // Right after the deciding vote the gate has not closed the record yet: show what the votes say.
  const status =
    r.status === 'pending' && (verdict.outcome === 'approved' || verdict.outcome === 'rejected')
      ? verdict.outcome
      : r.status;
  const statusText =
    status === 'pending' ? (r.stage === 'escalated' ? 'pending · escalated' : 'pending') : status;
  const title = `${status === 'pending' ? 'Approval needed' : `Approval ${status}`}: ${r.pipeline} · ${c.modelName} v${c.modelVersion}`;
  const content = markup`<header class="top">
      <div class="in">
        <div>
          <div class="brand">Sluice · approval</div>
          <h1>Deploy <code>${c.modelName}</code> version ${c.modelVersion} to production?</h1>
          <div class="sub">
            Pipeline <strong>${r.pipeline}</strong> · run <code>${r.runId}</code> · requested by
            ${r.requestedBy || 'unknown'} ·
            <a href="/api/models/${encodeURIComponent(c.modelName)}/versions/${c.modelVersion}/evidence">evidence pack</a>
          </div>
        </div>
        <div class="right">
          <span class="chip ${status}">${statusText}</span>
          ${status === 'pending' ? markup`<a class="jump" href="#s-decide">Go to the decision ↓</a>` : ''}
        </div>
      </div>
    </header>
    <main>
      ${view.notice ? markup`<div class="notice ${view.notice.kind}" role="status"><strong>${view.notice.title}</strong>${view.notice.text ? markup`<div>${view.notice.text}</div>` : ''}</div>` : ''}
      <section class="card" aria-labelledby="s-summary">
        <h2 id="s-summary">Summary</h2>
        <div class="grid">
          <div class="stat">
            <div class="k">Evaluation policy</div>
            <div class="v">
              ${e.verdict ? (e.verdict.passed ? markup`<span class="chip ok">passed</span>` : markup`<span class="chip fail">failed</span>`) : markup`<span class="chip neutral">n/a</span>`}
            </div>
          </div>
          <div class="stat">
            <div class="k">${primary ? primary.name : 'Primary metric'}</div>
            <div class="v">
              ${primary ? fmt(primary.candidate) : '—'}${primary && primary.production !== null ? markup` <span class="sub">vs ${fmt(primary.production)}</span>` : ''}
            </div>
          </div>
          <div class="stat">
            <div class="k">${status === 'pending' ? 'Decide by' : 'Closed'}</div>
            <div class="v small">${status === 'pending' ? when(r.deadline) : when(r.closedAt)}</div>
            ${status === 'pending' ? markup`<div class="sub">${left > 0 ? `in ${duration(left)}` : 'deadline passed'}</div>` : ''}
          </div>
          <div class="stat">
            <div class="k">Approvals</div>
            <div class="v">${verdict.approvedBy.length} / ${verdict.required}</div>
            <div class="sub">
              ${r.policy.reviewers.length + (r.stage === 'escalated' && r.policy.onTimeout.action === 'escalate' ? r.policy.onTimeout.reviewers.length : 0)}
              reviewer(s)
            </div>
          </div>
        </div>
        ${
          e.verdict && e.verdict.reasons.length > 0
            ? markup`<ul>
                ${e.verdict.reasons.map((x) => markup`<li>${x}</li>`)}
              </ul>`
            : ''
        }
        ${status !== 'pending' && r.reasons?.length ? markup`<p><strong>Outcome:</strong> ${r.reasons.join(' ')}</p>` : ''}
      </section>
      <section class="card" aria-labelledby="s-metrics">
        <h2 id="s-metrics">Candidate vs production</h2>
        ${metricsTable(e, styles)}
      </section>
      <section class="card" aria-labelledby="s-slices">
        <h2 id="s-slices">Per slice</h2>
        ${slicesTable(e)}
      </section>
      <section class="card" aria-labelledby="s-data">
        <h2 id="s-data">Data: validation and drift</h2>
        ${dataSection(e)}
      </section>
      <section class="card" aria-labelledby="s-schema">
        <h2 id="s-schema">Schema changes</h2>
        ${schemaSection(e)}
      </section>
      <section class="card" aria-labelledby="s-timeline">
        <h2 id="s-timeline">Run timeline</h2>
        ${timelineSection(e)}
      </section>
      <section class="card" aria-labelledby="s-decisions">
        <h2 id="s-decisions">Decisions so far</h2>
        ${decisionsSection(view)}
      </section>
      <section class="card" aria-labelledby="s-ids">
        <h2 id="s-ids">What exactly is approved</h2>
        <dl class="kv">
          <dt>Model</dt>
          <dd>${c.modelName} v${c.modelVersion}</dd>
          <dt>Model SHA-256</dt>
          <dd class="mono">${c.modelDigest}</dd>
          <dt>Dataset SHA-256</dt>
          <dd class="mono">${c.datasetDigest}</dd>
          ${
            c.codeDigest
              ? markup`<dt>Training code SHA-256</dt>
                <dd class="mono">${c.codeDigest}</dd>`
              : ''
          }
          <dt>Production now</dt>
          <dd>
            ${e.production ? markup`v${e.production.modelVersion} <span class="mono">${e.production.modelDigest}</span>` : 'none (first model)'}
          </dd>
          ${Object.entries(e.reports).map(([k, v]) =>
            // Known reports open through the API (its HTML view); the stored value is a storage
            // reference a reviewer's browser cannot read.
            isRunReportKind(k)
              ? markup`<dt>${k} report</dt>
                  <dd><a href="${runReportPath(r.runId, k)}">Open the ${k} report</a></dd>`
              : markup`<dt>${k}</dt>
                  <dd class="mono">${v}</dd>`,
          )}
        </dl>
      </section>
      <section class="card" aria-labelledby="s-decide">
        <h2 id="s-decide">Your decision</h2>
        <p class="sub">
          Reviewing as
          ${view.delegate ? markup`<strong>${view.delegate}</strong> on behalf of <strong>${view.reviewer}</strong> (delegation)` : markup`<strong>${view.reviewer}</strong>`}. This link works until
          ${when(view.linkExpiresAt.toISOString())}.
        </p>
        ${formSection(view)}
      </section>
    </main>`;
  return page(title, styles, content);
}

/** A small page for answers that have no approval to show (bad or expired link). */
export function renderMessagePage(title: string, text: string): RenderedPage {
  return page(
    title,
    new Styles(),
    markup`<header class="top">
        <div class="in">
          <div>
            <div class="brand">Sluice · approval</div>
            <h1>${title}</h1>
          </div>
        </div>
      </header>
      <main>
        <section class="card"><p>${text}</p></section>
      </main>`,
  );
}

/** The approval page URL for a token (what reviewers receive; never a Durable management URL). */
export function approvalLink(publicBaseUrl: string, token: string): string {
  return `${publicBaseUrl}/api/approvals/${token}`;
}
