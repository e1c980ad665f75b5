import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';
import { deployOutputsSchema } from '../contracts/run';
import type { RunDocument } from '../contracts/runDocument';
import type { LockWait, LockWaitHolder as Holder } from '../registry/lockWaits';
import { duration, when } from './format';
import { runPagePath } from './paths';

/**
 * The Run page's deployment lock: while the deploy step waits for the model's deployment lock, a
 * notice naming the run that holds it (or is ahead in line) and why; and every wait of the run as
 * its audit trail tells it (lib/registry/deployLock.ts: began with the holder and the reason, ended
 * granted or with the run, seconds waited), each with the hash of its entries.
 */

const runLink = (h: Holder): SafeHtml =>
  markup`run <a href="${runPagePath(h.runId, h.pipeline)}" class="mono">${h.runId}</a> of ${h.pipeline}`;

/** The notice while the run's deploy step waits for the lock; empty otherwise. */
export function lockWaitNotice(run: RunDocument): SafeHtml | '' {
  const deploy = run.steps.find((s) => s.name === 'deploy');
  if (deploy?.status !== 'running') return '';
  // While it waits the step's outputs hold only the wait, not yet the deployment's figures.
  const parsed = deployOutputsSchema.shape.lockWait.safeParse(deploy.outputs?.lockWait);
  const wait = parsed.success ? parsed.data : undefined;
  if (!wait) return '';
  return markup`<div class="notice info" role="status" data-lock-wait="${wait.holder.runId}"><strong>Waiting for the deployment lock held by ${runLink(wait.holder)}</strong> (${wait.reason})</div>`;
}

/** The Deployment lock section: the run's waits from the audit trail; empty when it never waited. */
export function lockWaitSection(waits: readonly LockWait[]): SafeHtml | '' {
  if (!waits.length) return '';
  const rows = waits.map(
    (w) => markup`<tr data-lock-wait-since="${w.since}">
<td>${when(w.since)}</td>
<td>${w.holder ? runLink(w.holder) : '—'}${w.reason ? markup`<br /><span class="sub">${w.reason}</span>` : ''}</td>
<td>${w.endedAt ? markup`${w.outcome === 'granted' ? 'granted' : 'run ended'} ${when(w.endedAt)}` : 'still waiting'}</td>
<td class="n">${w.waitedSeconds !== undefined ? duration(w.waitedSeconds * 1000) : '—'}</td>
<td class="mono">${w.entries.map((e) => markup`<span title="${e.kind}">#${e.seq} ${e.hash.slice(0, 12)}…</span> `)}</td>
</tr>`,
  );
  return markup`<section class="card" aria-labelledby="s-lock"><h2 id="s-lock">Deployment lock</h2>
<p class="sub">Each wait for the model's deployment lock, as the audit trail records it.</p>
<div class="scroll" tabindex="0"><table>
<thead><tr><th scope="col">Began</th><th scope="col">Held by</th><th scope="col">Ended</th><th scope="col" class="n">Waited</th><th scope="col">Audit entries</th></tr></thead>
<tbody>${rows}</tbody></table></div>
</section>`;
}
