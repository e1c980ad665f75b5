import type { Container } from '@azure/cosmos';
import { Cron } from 'croner';
import type { SafeHtml } from '../../approval/html';
import { markup } from '../../approval/html';
import type { PipelineDefinition } from '../../pipelines/definition';
import { modelNameOf } from '../../pipelines/definition';
import type { Schedule } from '../../pipelines/schedule';
import type { SlotRecord } from '../../pipelines/scheduler';
import type { PipelineStore, PipelineVersion, ScheduleState } from '../../pipelines/store';
import type { ConsoleAccess } from '../access';
import { csrfField } from '../csrf';
import { when, words } from '../format';
import { runPagePath } from '../paths';
import type { ConsolePage, PageInput } from '../layout';
import { renderPage } from '../layout';
import type { DiffRow } from './diff';
import { diffJson, diffValue } from './diff';

/**
 * The Pipelines pages: `/pipelines` lists the definitions; `/pipelines/{name}` shows one with its
 * versions, a field-level diff between any two (`?from=&to=`, a plain GET form), the schedule with
 * its next slots and its recent skips with their reasons, and for operators Pause/Resume of the
 * schedule and Run now on an uploaded file (the same code paths as the API's).
 */

type Frame = Pick<PageInput, 'banner' | 'who' | 'csrf'>;
type Store = Pick<
  PipelineStore<PipelineDefinition>,
  'list' | 'get' | 'versions' | 'scheduleState' | 'scheduleStates'
>;

/** Slots shown ahead, and recent slot decisions read. */
export const NEXT_SLOTS = 5;
export const RECENT_SLOTS = 20;

/** The next `n` slots of a schedule after `now` (croner, the same library the scheduler decides with). */
export function nextSlots(schedule: Schedule, now: Date, n = NEXT_SLOTS): Date[] {
  const cron = new Cron(schedule.cron, {
    paused: true,
    ...(schedule.timezone ? { timezone: schedule.timezone } : {}),
  });
  return cron.nextRuns(n, now);
}

export interface PipelineListItem {
  pipeline: PipelineVersion<PipelineDefinition>;
  state: ScheduleState | undefined;
  next: Date | undefined;
}

export async function loadPipelineList(pipelines: Store, now: Date): Promise<PipelineListItem[]> {
  const [all, states] = await Promise.all([pipelines.list(), pipelines.scheduleStates()]);
  return all.map((p) => {
    const schedule = p.definition.schedule;
    const state = states.get(p.name);
    return {
      pipeline: p,
      state,
      next: schedule && !state?.paused ? nextSlots(schedule, now, 1)[0] : undefined,
    };
  });
}

function scheduleCell(p: PipelineDefinition, state: ScheduleState | undefined): SafeHtml {
  if (!p.schedule) return markup`<span class="sub">none</span>`;
  return markup`<code>${p.schedule.cron}</code>${p.schedule.timezone ? ` ${p.schedule.timezone}` : ''} ${
    state?.paused
      ? markup`<span class="chip pending" data-schedule="paused">paused</span>`
      : markup`<span class="chip ok" data-schedule="active">active</span>`
  }`;
}

export function renderPipelineListPage(items: readonly PipelineListItem[], frame: Frame): ConsolePage {
  const body = markup`<h1>Pipelines</h1>
<p class="sub">Every pipeline at its latest version.</p>
<section class="card">${
    items.length
      ? markup`<div class="scroll" tabindex="0"><table><caption class="sr-only">Pipelines</caption>
<thead><tr><th scope="col">Pipeline</th><th scope="col">Version</th><th scope="col">Model</th><th scope="col">Schedule</th><th scope="col">Next slot</th><th scope="col">Updated</th></tr></thead>
<tbody>${items.map(
          ({ pipeline: p, state, next }) => markup`<tr data-pipeline="${p.name}">
<td><a href="/pipelines/${encodeURIComponent(p.name)}">${p.name}</a>${p.definition.description ? markup`<div class="sub">${p.definition.description}</div>` : ''}</td>
<td class="n">v${p.version}</td>
<td><a href="/models/${encodeURIComponent(modelNameOf(p.definition))}">${modelNameOf(p.definition)}</a></td>
<td>${scheduleCell(p.definition, state)}</td>
<td>${next ? markup`<time datetime="${next.toISOString()}">${when(next.toISOString())}</time>` : '—'}</td>
<td><time datetime="${p.createdAt}">${when(p.createdAt)}</time> by ${p.createdBy}</td>
</tr>`,
        )}</tbody></table></div>`
      : markup`<p>No pipeline is defined yet: <code>sluice pipelines put FILE</code> or PUT /api/pipelines/{name}.</p>`
  }</section>`;
  return renderPage({ ...frame, title: 'Pipelines', nav: 'pipelines', body });
}

export interface PipelinePageView {
  current: PipelineVersion<PipelineDefinition>;
  latestVersion: number;
  versions: { version: number; createdAt: string; createdBy: string }[];
  state: ScheduleState | undefined;
  next: Date[];
  /** Recent slot decisions, newest first. */
  slots: SlotRecord[];
  diff?: { from: number; to: number; rows: DiffRow[] };
  notice?: { kind: 'success' | 'error'; text: string };
}

/** `?version=`, `?from=`, `?to=`: positive integers, else undefined (the page says which is missing). */
function versionParam(query: URLSearchParams, key: string): number | undefined {
  const v = query.get(key);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

export async function loadPipeline(
  deps: { pipelines: Store; schedules: Pick<Container, 'items'> },
  name: string,
  query: URLSearchParams,
  now: Date,
): Promise<PipelinePageView | undefined> {
  const latest = await deps.pipelines.get(name);
  if (!latest) return undefined;
  const asked = versionParam(query, 'version');
  const current =
    (asked && asked !== latest.version ? await deps.pipelines.get(name, asked) : undefined) ?? latest;
  const [versions, state, slotResult] = await Promise.all([
    deps.pipelines.versions(name),
    deps.pipelines.scheduleState(name),
    deps.schedules.items
      .query<SlotRecord>(
        {
          query: `SELECT TOP ${RECENT_SLOTS} * FROM c WHERE c.pipeline = @p ORDER BY c.slot DESC`,
          parameters: [{ name: '@p', value: name }],
        },
        { partitionKey: name },
      )
      .fetchAll(),
  ]);
  const from = versionParam(query, 'from');
  const to = versionParam(query, 'to');
  let diff: PipelinePageView['diff'];
  if (from && to) {
    const [a, b] = await Promise.all([deps.pipelines.get(name, from), deps.pipelines.get(name, to)]);
    if (a && b) diff = { from, to, rows: diffJson(a.definition, b.definition) };
  }
  const schedule = current.definition.schedule;
  return {
    current,
    latestVersion: latest.version,
    versions,
    state,
    next: schedule && !state?.paused ? nextSlots(schedule, now) : [],
    slots: slotResult.resources.filter((r) => r.pipeline === name),
    ...(diff ? { diff } : {}),
  };
}

function diffSection(view: PipelinePageView): SafeHtml {
  const name = view.current.name;
  const versions = [...view.versions].reverse();
  const pick = (id: string, label: string, selected: number | undefined) => markup`<label for="${id}">${label}
<select id="${id}" name="${id}">${versions.map(
    (v) =>
      markup`<option value="${v.version}"${v.version === selected ? markup` selected` : ''}>v${v.version} · ${when(v.createdAt)}</option>`,
  )}</select></label>`;
  const defaultTo = view.diff?.to ?? view.latestVersion;
  const defaultFrom = view.diff?.from ?? Math.max(1, view.latestVersion - 1);
  const rows = view.diff?.rows;
  return markup`<section class="card" aria-labelledby="diff"><h2 id="diff">Compare versions</h2>
<form method="get" action="/pipelines/${encodeURIComponent(name)}" class="filters">
${pick('from', 'From', defaultFrom)}
${pick('to', 'To', defaultTo)}
<button type="submit">Compare</button>
</form>
${
  view.diff && rows
    ? rows.length
      ? markup`<div class="scroll gap"><table class="diff"><caption>v${view.diff.from} → v${view.diff.to}: ${rows.length} field${rows.length === 1 ? '' : 's'} changed</caption>
<thead><tr><th scope="col">Field</th><th scope="col">Change</th><th scope="col">v${view.diff.from}</th><th scope="col">v${view.diff.to}</th></tr></thead>
<tbody>${rows.map(
          (r) =>
            markup`<tr data-path="${r.path}"><td><code>${r.path}</code></td><td><span class="chip ${r.change === 'added' ? 'ok' : r.change === 'removed' ? 'fail' : 'pending'}">${r.change}</span></td><td><code>${diffValue(r.before)}</code></td><td><code>${diffValue(r.after)}</code></td></tr>`,
        )}</tbody></table></div>`
      : markup`<p class="gap">v${view.diff.from} and v${view.diff.to} are the same definition.</p>`
    : ''
}
</section>`;
}

function scheduleSection(view: PipelinePageView, access: ConsoleAccess, csrf: string | undefined): SafeHtml {
  const name = view.current.name;
  const schedule = view.current.definition.schedule;
  if (!schedule) {
    return markup`<section class="card" aria-labelledby="schedule"><h2 id="schedule">Schedule</h2><p>This pipeline has no schedule; runs start from the API, the CLI or Run now below.</p></section>`;
  }
  const paused = view.state?.paused === true;
  const skips = view.slots.filter((s) => !s.started);
  const control = access.canOperate
    ? markup`<form method="post" action="/pipelines/${encodeURIComponent(name)}/schedule" class="decide" id="schedule-form">
${csrf ? csrfField(csrf) : ''}
<input type="hidden" name="action" value="${paused ? 'resume' : 'pause'}" />
<label for="schedule-reason">Reason${paused ? ' (optional)' : ''}</label>
<input id="schedule-reason" name="reason" maxlength="500" autocomplete="off" />
<div class="buttons"><button type="submit" class="${paused ? 'approve' : 'danger'}">${paused ? 'Resume the schedule' : 'Pause the schedule'}</button></div>
</form>`
    : markup`<p class="fine">Pausing and resuming need the Sluice.Operator role.</p>`;
  return markup`<section class="card" aria-labelledby="schedule"><h2 id="schedule">Schedule</h2>
<dl class="kv">
<dt>When</dt><dd><code>${schedule.cron}</code> (${schedule.timezone ?? 'UTC'})</dd>
<dt>Data</dt><dd><code>${schedule.source.blob}</code>${schedule.skipIfDataUnchanged ? ' · skipped when unchanged' : ''}</dd>
<dt>Limit</dt><dd>${schedule.maxRunsPerWindow} runs per ${schedule.windowHours} h · a slot missed by over ${schedule.catchUpMinutes} min is not started late</dd>
<dt>State</dt><dd data-field="schedule-state">${
    paused
      ? markup`<span class="chip pending">paused</span> by ${view.state!.by} <time datetime="${view.state!.at}">${when(view.state!.at)}</time>${view.state!.reason ? markup`: ${view.state!.reason}` : ''}`
      : markup`<span class="chip ok">active</span>${view.state ? markup` <span class="sub">resumed by ${view.state.by} ${when(view.state.at)}</span>` : ''}`
  }</dd>
</dl>
<h3>Next slots</h3>
${
  view.next.length
    ? markup`<ul class="plain">${view.next.map((d) => markup`<li><time datetime="${d.toISOString()}">${when(d.toISOString())}</time></li>`)}</ul>`
    : markup`<p>${paused ? 'None while the schedule is paused: every slot is recorded as skipped.' : 'None.'}</p>`
}
${control}
<h3>Recent skips</h3>
${
  skips.length
    ? markup`<div class="scroll" tabindex="0"><table><caption class="sr-only">Skipped slots</caption><thead><tr><th scope="col">Slot</th><th scope="col">Reason</th><th scope="col">Detail</th></tr></thead>
<tbody>${skips.map(
        (s) =>
          markup`<tr data-slot="${s.slot}"><td><time datetime="${s.slot}">${when(s.slot)}</time></td><td><span class="chip neutral">${words(s.reason ?? 'skipped')}</span></td><td>${s.detail ?? ''}</td></tr>`,
      )}</tbody></table></div>`
    : markup`<p>No slot was skipped recently.</p>`
}
${
  view.slots.some((s) => s.started)
    ? markup`<h3>Recent scheduled runs</h3><ul class="plain">${view.slots
        .filter((s) => s.started && s.runId)
        .map(
          (s) =>
            markup`<li><time datetime="${s.slot}">${when(s.slot)}</time> · <a href="${runPagePath(s.runId!, view.current.name)}">${s.runId}</a></li>`,
        )}</ul>`
    : ''
}
</section>`;
}

function runNowSection(view: PipelinePageView, access: ConsoleAccess, csrf: string | undefined): SafeHtml {
  const name = view.current.name;
  if (!access.canOperate) return markup``;
  return markup`<section class="card" aria-labelledby="runnow"><h2 id="runnow">Run now</h2>
<form method="post" action="/pipelines/${encodeURIComponent(name)}/run" enctype="multipart/form-data" class="decide" id="run-form">
${csrf ? csrfField(csrf) : ''}
<label for="run-file">Dataset (CSV, JSON Lines or Parquet)</label>
<input id="run-file" name="file" type="file" required accept=".csv,.jsonl,.ndjson,.parquet,text/csv,application/x-ndjson" />
<div class="buttons"><button type="submit" class="approve">Upload and start a run</button></div>
<p class="fine">Starts a run of v${view.latestVersion} on the file, exactly as POST /api/pipelines/${name}/runs does.</p>
</form></section>`;
}

export function renderPipelinePage(view: PipelinePageView, access: ConsoleAccess, frame: Frame): ConsolePage {
  const p = view.current;
  const d = p.definition;
  const body = markup`<p class="sub"><a href="/pipelines">Pipelines</a> /</p>
<h1>${p.name} <span class="sub">v${p.version}${p.version !== view.latestVersion ? markup` (latest is <a href="/pipelines/${encodeURIComponent(p.name)}">v${view.latestVersion}</a>)` : ''}</span></h1>
${view.notice ? markup`<div class="notice ${view.notice.kind}" role="status"><strong>${view.notice.text}</strong></div>` : ''}
${d.description ? markup`<p>${d.description}</p>` : ''}
<section class="card" aria-labelledby="definition"><h2 id="definition">Definition</h2>
<dl class="kv">
<dt>Model</dt><dd><a href="/models/${encodeURIComponent(modelNameOf(d))}">${modelNameOf(d)}</a></dd>
<dt>Training</dt><dd>${d.training.algorithm} · target <code>${d.training.target}</code> · ${d.training.features.length} features</dd>
<dt>Dataset contract</dt><dd>${d.dataset.columns.length} columns</dd>
<dt>Approval</dt><dd>${d.approval.requiredApprovals} of ${d.approval.reviewers.join(', ')} · timeout ${d.approval.timeout}</dd>
<dt>Saved</dt><dd><time datetime="${p.createdAt}">${when(p.createdAt)}</time> by ${p.createdBy}</dd>
</dl>
<details><summary>The whole definition (JSON)</summary><pre class="mono scroll">${JSON.stringify(d, null, 2)}</pre></details>
</section>
<section class="card" aria-labelledby="versions"><h2 id="versions">Versions</h2>
<div class="scroll" tabindex="0"><table><caption class="sr-only">Versions of ${p.name}</caption><thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th><th scope="col">Compare</th></tr></thead>
<tbody>${[...view.versions]
    .reverse()
    .map(
      (v) =>
        markup`<tr data-version="${v.version}"><td><a href="/pipelines/${encodeURIComponent(p.name)}?version=${v.version}">v${v.version}</a></td><td><time datetime="${v.createdAt}">${when(v.createdAt)}</time></td><td>${v.createdBy}</td><td>${
          v.version > 1
            ? markup`<a href="/pipelines/${encodeURIComponent(p.name)}?from=${v.version - 1}&amp;to=${v.version}#diff" aria-label="Compare v${v.version - 1} with v${v.version}">v${v.version - 1} → v${v.version}</a>`
            : '—'
        }</td></tr>`,
    )}</tbody></table></div>
</section>
${diffSection(view)}
${scheduleSection(view, access, frame.csrf)}
${runNowSection(view, access, frame.csrf)}`;
  return renderPage({ ...frame, title: `Pipeline ${p.name}`, nav: 'pipelines', body });
}
