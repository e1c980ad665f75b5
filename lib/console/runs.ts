import { z } from 'zod';
import { markup } from '../approval/html';
import { runStatusSchema, stopReasonSchema } from '../contracts/runDocument';
import { ValidationError } from '../errors';
import type { RunPageFilter, RunStore, RunSummary } from '../runs/store';
import { terminalRunStatuses } from '../runs/document';
import { duration, statusChip, when, words } from './format';
import type { RunOverride } from './overrides';
import { overrideChip } from './overrides';
import { runPagePath } from './paths';
import type { ConsolePage, PageInput } from './layout';
import { renderPage } from './layout';

/**
 * The Runs page (`/runs`): newest first, filtered by pipeline, status, stop reason and creation
 * date, paged with a keyset cursor (RunStore.page), with live status of active runs (the console
 * script polls /api/runs with the same filters; without JavaScript, a refresh link), and the
 * override mark on runs whose model went to production by emergency override.
 */

export const RUNS_PAGE_SIZE = 50;

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD')
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)), 'a real date');

const querySchema = z.object({
  pipeline: z
    .string()
    .max(64)
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'a pipeline name (lower-case letters, digits, dashes)')
    .optional(),
  status: runStatusSchema.optional(),
  stop: stopReasonSchema.optional(),
  from: day.optional(),
  to: day.optional(),
  before: z.iso.datetime().optional(),
});
export type RunsQuery = z.infer<typeof querySchema>;

/** The page's filters from its query string; an unknown or malformed one is a 400 naming it. */
export function parseRunsQuery(params: URLSearchParams): RunsQuery {
  const raw: Record<string, string> = {};
  for (const [k, v] of params) if (v !== '' && k in querySchema.shape) raw[k] = v;
  const parsed = querySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? 'query');
    throw new ValidationError('invalid_filter', `the ${field} filter is not valid: ${issue.message}`, {
      field,
    });
  }
  return parsed.data;
}

function nextDay(d: string): string {
  return new Date(Date.parse(`${d}T00:00:00Z`) + 86_400_000).toISOString();
}

export function filterOf(q: RunsQuery): RunPageFilter {
  return {
    ...(q.pipeline ? { pipeline: q.pipeline } : {}),
    ...(q.status ? { status: q.status } : {}),
    ...(q.stop ? { stopReason: q.stop } : {}),
    ...(q.from ? { from: `${q.from}T00:00:00.000Z` } : {}),
    ...(q.to ? { to: nextDay(q.to) } : {}),
    ...(q.before ? { before: q.before } : {}),
  };
}

function href(q: RunsQuery, change: Partial<RunsQuery>): string {
  const all = { ...q, ...change };
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) if (v) params.set(k, String(v));
  const s = params.toString();
  return s ? `/runs?${s}` : '/runs';
}

function option(value: string, selected: string | undefined, label = words(value)) {
  return markup`<option value="${value}"${value === selected ? markup` selected` : ''}>${label}</option>`;
}

function row(r: RunSummary, now: Date, override: RunOverride | undefined) {
  const end = r.endedAt ? Date.parse(r.endedAt) : now.getTime();
  const took = Math.max(0, end - Date.parse(r.createdAt));
  return markup`<tr>
<td><a href="${runPagePath(r.id, r.pipeline)}" class="mono">${r.id}</a></td>
<td>${r.pipeline} <span class="sub">v${r.pipelineVersion}</span></td>
<td>${statusChip(r.status, r.id)}${r.stopReason ? markup`<br /><span class="sub">${words(r.stopReason)}</span>` : ''}${override ? markup`<br />${overrideChip(override.override)} <span class="sub">${override.modelName} v${override.version}</span>` : ''}</td>
<td class="opt">${when(r.createdAt)}</td>
<td class="n">${r.endedAt ? duration(took) : markup`<span class="sub">${duration(took)} so far</span>`}</td>
<td class="opt">${r.trigger ? `${r.trigger.kind} · ${r.trigger.by}` : '—'}</td>
</tr>`;
}

export async function renderRunsPage(
  deps: {
    runs: Pick<RunStore, 'page'>;
    now?: () => Date;
    /** The override marks of the page's runs (lib/console/overrides.ts); none shown without it. */
    overrides?: (runIds: readonly string[]) => Promise<Map<string, RunOverride>>;
  },
  params: URLSearchParams,
  frame: Pick<PageInput, 'banner' | 'who' | 'csrf'>,
): Promise<ConsolePage> {
  const q = parseRunsQuery(params);
  const now = deps.now?.() ?? new Date();
  const page = await deps.runs.page(filterOf(q), RUNS_PAGE_SIZE);
  const overrides = deps.overrides ? await deps.overrides(page.runs.map((r) => r.id)) : new Map();
  const poll = new URLSearchParams({ limit: String(RUNS_PAGE_SIZE) });
  if (q.pipeline) poll.set('pipeline', q.pipeline);
  if (q.status) poll.set('status', q.status);
  const active = page.runs.some((r) => !terminalRunStatuses.has(r.status));
  const filtered = Boolean(q.pipeline || q.status || q.stop || q.from || q.to);
  const body = markup`
<h1>Runs</h1>
<p class="sub">Newest first.${active ? markup` Active runs update live; <a href="${href(q, {})}">refresh</a> if this page does not.` : ''}</p>
<form class="filters card" method="get" action="/runs" role="search" aria-label="Filter runs">
<label>Pipeline <input name="pipeline" value="${q.pipeline ?? ''}" autocomplete="off" spellcheck="false" /></label>
<label>Status <select name="status"><option value="">any</option>${runStatusSchema.options.map((s) => option(s, q.status))}</select></label>
<label>Stop reason <select name="stop"><option value="">any</option>${stopReasonSchema.options.map((s) => option(s, q.stop))}</select></label>
<label>From <input type="date" name="from" value="${q.from ?? ''}" /></label>
<label>To <input type="date" name="to" value="${q.to ?? ''}" /></label>
<button type="submit">Filter</button>
${filtered ? markup`<a class="button quiet" href="/runs">Clear</a>` : ''}
</form>
<div class="card">
${
  page.runs.length === 0
    ? markup`<p>${q.before ? 'No older runs.' : filtered ? 'No run matches these filters.' : 'No runs yet. Start one with sluice run or POST /api/runs.'}</p>`
    : markup`<div class="scroll" tabindex="0"><table class="runs" data-poll-list="/api/runs?${poll.toString()}">
<caption class="sr-only">Runs, newest first</caption>
<thead><tr><th scope="col">Run</th><th scope="col">Pipeline</th><th scope="col">Status</th><th scope="col" class="opt">Created</th><th scope="col" class="n">Took</th><th scope="col" class="opt">Trigger</th></tr></thead>
<tbody>${page.runs.map((r) => row(r, now, overrides.get(r.id)))}</tbody>
</table></div>`
}
<nav class="pager" aria-label="Pages">
${q.before ? markup`<a href="${href(q, { before: undefined })}">Newest</a>` : markup`<span></span>`}
${page.next ? markup`<a class="button quiet" href="${href(q, { before: page.next })}" rel="next">Older runs</a>` : ''}
</nav>
</div>`;
  return renderPage({ ...frame, title: 'Runs', nav: 'runs', body });
}
