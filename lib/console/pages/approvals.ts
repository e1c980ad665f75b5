import type { Container } from '@azure/cosmos';
import type { SafeHtml } from '../../approval/html';
import { markup } from '../../approval/html';
import { activeAt, delegationSchema } from '../../approval/delegation';
import { eligibleReviewers, requiredApprovals } from '../../approval/policy';
import { signApprovalToken } from '../../approval/token';
import type { ApprovalDecision, ApprovalRecord } from '../../contracts/approvalRecord';
import { approvalRecordSchema, decisionSchema } from '../../contracts/approvalRecord';
import { isOverrideReviewRunId } from '../../contracts/overrideReview';
import type { Keyring } from '../../keyring';
import type { ConsoleAccess } from '../access';
import { duration, when } from '../format';
import { runPagePath } from '../paths';
import type { ConsolePage, PageInput } from '../layout';
import { renderPage } from '../layout';

/**
 * The Approvals page: the inbox of pending decisions and the recent decisions with who made them.
 *
 * A link to the approval page is a capability (a signed token for one reviewer), so the console mints
 * one only for the person it is for: a signed-in reviewer sees a fresh link for their own identity
 * on the approvals that wait for them, and no one else's. On the open local console, where no one
 * signs in, every pending reviewer's link is shown (the banner says the console is open).
 */

/** At most this many pending approvals and recent decisions are read for the page. */
export const APPROVALS_PAGE_LIMIT = 100;
export const RECENT_DECISIONS_LIMIT = 30;

export interface ApprovalsDeps {
  approvals: Pick<Container, 'items'>;
  /** The approval signing keys; undefined when approvals are not configured (no links then). */
  keyring: Keyring | undefined;
  now: Date;
}

export interface PendingApproval {
  record: ApprovalRecord;
  decisions: ApprovalDecision[];
  /** Eligible reviewers who have not decided yet. */
  waitingFor: string[];
  /**
   * Links the viewer may see, by reviewer; `delegate` is set on a link for the reviewer's delegate
   * (lib/approval/delegation.ts), who decides on the reviewer's behalf.
   */
  links: { reviewer: string; href: string; delegate?: string }[];
  /** True when the viewer is one of `waitingFor`, or holds the approvals of one as their delegate. */
  mine: boolean;
  /** Reviewers in `waitingFor` whose approvals the viewer holds as their delegate. */
  onBehalfOf: string[];
}

export interface ApprovalsView {
  pending: PendingApproval[];
  recent: (ApprovalDecision & { pipeline?: string; modelName?: string; modelVersion?: number })[];
  /** Closed approvals that ended without people (expired, withdrawn), newest first. */
  closed: ApprovalRecord[];
  linksAvailable: boolean;
}

async function query<T>(
  container: Pick<Container, 'items'>,
  q: string,
  parameters: { name: string; value: string | number }[] = [],
) {
  const { resources } = await container.items.query<T>({ query: q, parameters }).fetchAll();
  return resources;
}

export async function loadApprovals(deps: ApprovalsDeps, access: ConsoleAccess): Promise<ApprovalsView> {
  const [pendingDocs, decisionDocs, closedDocs, delegationDocs] = await Promise.all([
    query<unknown>(
      deps.approvals,
      `SELECT TOP ${APPROVALS_PAGE_LIMIT} * FROM c WHERE c.type = "approval" AND c.status = "pending" ORDER BY c.createdAt DESC`,
    ),
    query<unknown>(
      deps.approvals,
      `SELECT TOP ${RECENT_DECISIONS_LIMIT} * FROM c WHERE c.type = "decision" ORDER BY c.decidedAt DESC`,
    ),
    query<unknown>(
      deps.approvals,
      `SELECT TOP ${RECENT_DECISIONS_LIMIT} * FROM c WHERE c.type = "approval" AND c.status != "pending" ORDER BY c.createdAt DESC`,
    ),
    // One document per reviewer who ever delegated (lib/approval/delegation.ts): a short list.
    query<{ reviewer?: unknown; items?: unknown[] }>(
      deps.approvals,
      'SELECT c.reviewer, c.items FROM c WHERE c.type = "delegations"',
    ),
  ]);
  // Who holds whose approvals right now: reviewer (lower case) → delegate.
  const delegateOf = new Map<string, string>();
  for (const doc of delegationDocs) {
    const items = (doc.items ?? []).flatMap((i) => {
      const parsed = delegationSchema.safeParse(i);
      return parsed.success ? [parsed.data] : [];
    });
    const active = activeAt(items, deps.now);
    if (active) delegateOf.set(active.reviewer.toLowerCase(), active.to.toLowerCase());
  }
  const records = pendingDocs.map((d) => approvalRecordSchema.parse(d));
  const closed = closedDocs.map((d) => approvalRecordSchema.parse(d));
  const recentRaw = decisionDocs.map((d) => decisionSchema.parse(d));

  // The decisions of the pending approvals (one query per run partition would cost more than one IN).
  const pendingIds = records.map((r) => r.id);
  const pendingDecisions = pendingIds.length
    ? (
        await query<unknown>(
          deps.approvals,
          `SELECT * FROM c WHERE c.type = "decision" AND ARRAY_CONTAINS(@ids, c.approvalId)`,
          [{ name: '@ids', value: pendingIds as unknown as string }],
        )
      ).map((d) => decisionSchema.parse(d))
    : [];

  const mine = new Set(access.principal?.identities ?? []);
  const pending = records.map((record): PendingApproval => {
    const decisions = pendingDecisions.filter((d) => d.approvalId === record.id);
    const decided = new Set(decisions.map((d) => d.reviewer.toLowerCase()));
    const waitingFor = eligibleReviewers(record).filter((r) => !decided.has(r.toLowerCase()));
    const visible = access.local ? waitingFor : waitingFor.filter((r) => mine.has(r.toLowerCase()));
    // Reviewers whose approvals the viewer holds as delegate (on the open console: every delegate's).
    const delegated = waitingFor.flatMap((reviewer) => {
      const delegate = delegateOf.get(reviewer.toLowerCase());
      return delegate && (access.local || mine.has(delegate)) ? [{ reviewer, delegate }] : [];
    });
    // A link past the deadline would open on "expired": the gate is about to close this one.
    const open = Date.parse(record.deadline) > deps.now.getTime();
    const sign = (reviewer: string, delegate?: string) =>
      `/api/approvals/${signApprovalToken(deps.keyring!, {
        runId: record.runId,
        approvalId: record.id,
        reviewer,
        expiresAt: new Date(record.deadline),
        ...(delegate ? { delegate } : {}),
      })}`;
    const links =
      deps.keyring && open
        ? [
            ...visible.map((reviewer) => ({ reviewer, href: sign(reviewer) })),
            ...delegated.map(({ reviewer, delegate }) => ({
              reviewer,
              delegate,
              href: sign(reviewer, delegate),
            })),
          ]
        : [];
    return {
      record,
      decisions,
      waitingFor,
      links,
      mine: waitingFor.some((r) => mine.has(r.toLowerCase())) || (!access.local && delegated.length > 0),
      onBehalfOf: access.local ? [] : delegated.map((d) => d.reviewer),
    };
  });

  // Name the model and pipeline of each recent decision from the records this page already read.
  const known = new Map([...records, ...closed].map((r) => [r.id, r]));
  const recent = recentRaw.map((d) => {
    const r = known.get(d.approvalId);
    return r
      ? {
          ...d,
          pipeline: r.pipeline,
          modelName: r.candidate.modelName,
          modelVersion: r.candidate.modelVersion,
        }
      : d;
  });
  return {
    pending,
    recent,
    closed: closed.filter((r) => r.status === 'expired' || r.status === 'withdrawn').slice(0, 10),
    linksAvailable: deps.keyring !== undefined,
  };
}

/**
 * The run an approval belongs to. An override's post-hoc review (docs/governance.md) has no run:
 * its approval lives under a pseudo run id (`overrideReviewRunId`), so it links the model's page,
 * where the override and its review are shown, instead of a run page that does not exist.
 */
function runLink(runId: string, pipeline?: string, model?: { name: string; version: number }): SafeHtml {
  if (model && isOverrideReviewRunId(runId, model.name, model.version)) {
    return markup`<a href="/models/${encodeURIComponent(model.name)}" data-override-review="${runId}">post-hoc review of the override of ${model.name} v${model.version}</a>`;
  }
  return markup`<a href="${runPagePath(runId, pipeline)}">${runId}</a>`;
}

function deadlineText(deadline: string, now: Date): SafeHtml {
  const left = Date.parse(deadline) - now.getTime();
  return left >= 0
    ? markup`<time datetime="${deadline}" title="${when(deadline)}">in ${duration(left)}</time>`
    : markup`<time datetime="${deadline}" title="${when(deadline)}"><strong>overdue</strong> by ${duration(-left)}</time>`;
}

function pendingTable(
  items: PendingApproval[],
  now: Date,
  showLinks: boolean,
  caption: string,
  access: Pick<ConsoleAccess, 'local'>,
): SafeHtml {
  const rows = items.map((p) => {
    const r = p.record;
    const approvals = p.decisions.filter((d) => d.decision === 'approve').length;
    return markup`<tr data-approval="${r.id}">
<td>${runLink(r.runId, r.pipeline, { name: r.candidate.modelName, version: r.candidate.modelVersion })}<div class="sub">${r.pipeline}</div></td>
<td><a href="/models/${encodeURIComponent(r.candidate.modelName)}">${r.candidate.modelName}</a> v${r.candidate.modelVersion}</td>
<td>${r.requestedBy}</td>
<td class="n"><time datetime="${r.createdAt}" title="${when(r.createdAt)}">${duration(now.getTime() - Date.parse(r.createdAt))}</time></td>
<td>${deadlineText(r.deadline, now)}${r.stage === 'escalated' ? markup` <span class="chip pending">escalated</span>` : ''}</td>
<td class="n">${approvals} of ${requiredApprovals(r)}</td>
<td>${p.waitingFor.join(', ') || '—'}${p.onBehalfOf.length ? markup`<div class="sub" data-on-behalf-of="${p.onBehalfOf.join(' ')}">you, on behalf of ${p.onBehalfOf.join(', ')}</div>` : ''}</td>
${
  showLinks
    ? markup`<td>${
        p.links.length
          ? p.links.map((l) =>
              l.delegate
                ? markup`<a class="button quiet" href="${l.href}" data-delegate="${l.delegate}" aria-label="Open the approval page of run ${r.runId} as ${l.delegate} on behalf of ${l.reviewer}">${access.local ? `Open as ${l.delegate} on behalf of ${l.reviewer}` : `Review on behalf of ${l.reviewer}`}</a> `
                : markup`<a class="button quiet" href="${l.href}" aria-label="Open the approval page of run ${r.runId} as ${l.reviewer}">${p.links.length > 1 || !p.mine ? `Open as ${l.reviewer}` : 'Review'}</a> `,
            )
          : '—'
      }</td>`
    : ''
}
</tr>`;
  });
  return markup`<div class="scroll" tabindex="0"><table>
<caption class="sr-only">${caption}</caption>
<thead><tr><th scope="col">Run</th><th scope="col">Model</th><th scope="col">Requested by</th><th scope="col">Age</th><th scope="col">Deadline</th><th scope="col">Approvals</th><th scope="col">Waiting for</th>${showLinks ? markup`<th scope="col">Approval page</th>` : ''}</tr></thead>
<tbody>${rows}</tbody></table></div>`;
}

export function renderApprovalsPage(
  view: ApprovalsView,
  access: ConsoleAccess,
  now: Date,
  frame: Pick<PageInput, 'banner' | 'who' | 'csrf'>,
): ConsolePage {
  const forMe = access.local ? view.pending : view.pending.filter((p) => p.mine);
  const others = access.local ? [] : view.pending.filter((p) => !p.mine);
  const inboxTitle = access.local ? 'Pending approvals' : 'Waiting for you';
  const noKeys = view.linksAvailable
    ? ''
    : markup`<p class="fine">Approval links cannot be made here: APPROVAL_SIGNING_KEYS is not set.</p>`;
  const body = markup`<h1>Approvals</h1>
<p class="sub">${
    access.local
      ? 'Every pending decision (the local console is open, so each reviewer’s own link is shown).'
      : `Decisions waiting for ${access.who}, and the others pending.`
  }</p>
<section class="card" aria-labelledby="inbox"><h2 id="inbox">${inboxTitle} <span class="sub">(${forMe.length})</span></h2>
${forMe.length ? pendingTable(forMe, now, true, inboxTitle, access) : markup`<p>Nothing is waiting${access.local ? '' : ' for you'}.</p>`}${noKeys}
</section>
${
  others.length
    ? markup`<section class="card" aria-labelledby="others"><h2 id="others">Other pending approvals <span class="sub">(${others.length})</span></h2>
<p class="fine">Their approval links go to their reviewers only.</p>
${pendingTable(others, now, false, 'Other pending approvals', access)}</section>`
    : ''
}
<section class="card" aria-labelledby="recent"><h2 id="recent">Recent decisions</h2>
${
  view.recent.length
    ? markup`<div class="scroll" tabindex="0"><table><caption class="sr-only">Recent decisions</caption>
<thead><tr><th scope="col">When</th><th scope="col">Reviewer</th><th scope="col">Decision</th><th scope="col">Run</th><th scope="col">Model</th><th scope="col">Comment</th></tr></thead>
<tbody>${view.recent.map(
        (d) => markup`<tr>
<td><time datetime="${d.decidedAt}">${when(d.decidedAt)}</time></td>
<td>${d.delegate ? markup`${d.delegate} <span class="sub">on behalf of</span> ${d.reviewer}` : d.reviewer}${d.principal?.name && d.principal.name.toLowerCase() !== (d.delegate ?? d.reviewer) ? markup`<div class="sub">signed in as ${d.principal.name}</div>` : ''}</td>
<td><span class="chip ${d.decision === 'approve' ? 'approved' : 'rejected'}">${d.decision === 'approve' ? 'approved' : 'rejected'}</span></td>
<td>${runLink(d.runId, d.pipeline, d.modelName && d.modelVersion !== undefined ? { name: d.modelName, version: d.modelVersion } : undefined)}${d.pipeline ? markup`<div class="sub">${d.pipeline}</div>` : ''}</td>
<td>${d.modelName ? markup`${d.modelName} v${d.modelVersion}` : '—'}</td>
<td>${d.comment || '—'}</td>
</tr>`,
      )}</tbody></table></div>`
    : markup`<p>No decisions yet.</p>`
}
${
  view.closed.length
    ? markup`<h3>Closed without a decision</h3><ul class="plain">${view.closed.map(
        (r) =>
          markup`<li>${runLink(r.runId, r.pipeline, { name: r.candidate.modelName, version: r.candidate.modelVersion })} · ${r.candidate.modelName} v${r.candidate.modelVersion} · <span class="chip ${r.status}">${r.status}</span> ${r.withdrawn ? markup`<span class="sub">${r.withdrawn.message}</span>` : markup`<span class="sub">deadline ${when(r.deadline)}</span>`}</li>`,
      )}</ul>`
    : ''
}
</section>`;
  return renderPage({ ...frame, title: 'Approvals', nav: 'approvals', body });
}
