/**
 * The Run page while a deployment waits for its model's deployment lock (a notice naming the
 * holder's run and the reason), and each wait as the audit trail tells it (paired began/ended
 * entries of this run only, with seconds waited and the entries' hashes).
 */
import type { AuditEntry } from '../../../lib/audit/chain';
import { renderRunPage } from '../../../lib/console/run';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { LOCK_WAIT_BEGAN, LOCK_WAIT_ENDED } from '../../../lib/registry/deployLock';
import { lockWaitsOf, lockWaitSubject } from '../../../lib/registry/lockWaits';
import { uploadedRunDocument } from '../../support/runSample';

const T = '2026-12-05T08:00:00.000Z';
const reason =
  'waiting for the deployment lock of wages: run r-first of wages-nightly is deploying it (since 2026-12-05T08:30:00.000Z)';

function waitingRun(): RunDocument {
  const run = uploadedRunDocument('r-second', 'wages-weekly', T);
  return {
    ...run,
    status: 'running',
    deploymentLock: { modelName: 'wages', at: '2026-12-05T08:40:00.000Z' },
    steps: run.steps.map((s) =>
      s.name === 'deploy'
        ? {
            ...s,
            status: 'running' as const,
            startedAt: '2026-12-05T08:40:00.000Z',
            outputs: { lockWait: { reason, holder: { runId: 'r-first', pipeline: 'wages-nightly' } } },
          }
        : s.name === 'evaluate'
          ? { ...s, status: 'succeeded' as const, outputs: { reportUri: 'r', modelVersion: 5 } }
          : s,
    ),
  };
}

let seq = 0;
const entry = (kind: string, data: Record<string, unknown>): AuditEntry => {
  seq++;
  return {
    seq,
    at: T,
    kind,
    actor: `run:${String(data.runId)}`,
    subject: 'model/wages/5',
    data,
    prevHash: 'p'.repeat(64),
    hash: `${seq}`.repeat(64).slice(0, 64),
  };
};

const holder = { runId: 'r-first', pipeline: 'wages-nightly' };
const entries = [
  entry(LOCK_WAIT_BEGAN, { runId: 'r-second', since: '2026-12-05T08:40:00.000Z', holder, reason }),
  entry('alias.moved', { runId: 'r-second' }),
  entry(LOCK_WAIT_BEGAN, { runId: 'someone-else', since: '2026-12-05T08:41:00.000Z', holder, reason }),
  entry(LOCK_WAIT_ENDED, {
    runId: 'r-second',
    since: '2026-12-05T08:40:00.000Z',
    endedAt: '2026-12-05T08:47:00.000Z',
    outcome: 'granted',
    waitedSeconds: 420,
    holder,
    reason,
  }),
];

describe('the Run page and the deployment lock', () => {
  it('the waits are recorded under the candidate version, or the run when none was registered', () => {
    const run = waitingRun();
    expect(lockWaitSubject(run, 'wages')).toBe('model/wages/5');
    expect(lockWaitSubject({ id: 'r-x', steps: [] }, 'wages')).toBe('run/r-x');
  });

  it('pairs the began and ended entries of this run only', () => {
    expect(lockWaitsOf(entries, 'r-second')).toEqual([
      {
        since: '2026-12-05T08:40:00.000Z',
        holder,
        reason,
        endedAt: '2026-12-05T08:47:00.000Z',
        outcome: 'granted',
        waitedSeconds: 420,
        entries: [
          { seq: entries[0]!.seq, kind: LOCK_WAIT_BEGAN, hash: entries[0]!.hash },
          { seq: entries[3]!.seq, kind: LOCK_WAIT_ENDED, hash: entries[3]!.hash },
        ],
      },
    ]);
    expect(lockWaitsOf(entries, 'someone-else')[0]).toMatchObject({ holder, reason });
    expect(lockWaitsOf(entries, 'someone-else')[0]).not.toHaveProperty('endedAt');
  });

  it('while the deploy step waits, the page says whose lock it waits for and why', () => {
    const page = renderRunPage(
      waitingRun(),
      { problems: [] },
      new Date('2026-12-05T08:45:00.000Z'),
      {},
      { canOperate: false, csrf: 't' },
    );
    expect(page.body).toContain('data-lock-wait="r-first"');
    expect(page.body).toMatch(
      /Waiting for the deployment lock held by run <a href="[^"]*r-first[^"]*" class="mono">r-first<\/a> of wages-nightly<\/strong> \(waiting for the deployment lock of wages: run r-first of wages-nightly is deploying it/,
    );
    // No wait recorded yet: no lock section.
    expect(page.body).not.toContain('id="s-lock"');
  });

  it('shows each wait from the audit trail, and no waiting notice once the step moved on', () => {
    const run = waitingRun();
    const deployed: RunDocument = {
      ...run,
      steps: run.steps.map((s) =>
        s.name === 'deploy' ? { ...s, status: 'succeeded' as const, endedAt: '2026-12-05T08:48:00.000Z' } : s,
      ),
    };
    const page = renderRunPage(
      deployed,
      { problems: [], lockWaits: lockWaitsOf(entries, 'r-second') },
      new Date('2026-12-05T09:00:00.000Z'),
      {},
      { canOperate: false, csrf: 't' },
    );
    expect(page.body).not.toContain('data-lock-wait="');
    expect(page.body).toContain('id="s-lock"');
    const row = /<tr data-lock-wait-since="2026-12-05T08:40:00.000Z">([\s\S]*?)<\/tr>/.exec(page.body)?.[1];
    expect(row).toContain('r-first');
    expect(row).toContain('granted 2026-12-05 08:47:00 UTC');
    expect(row).toContain('7 min');
    expect(row).toContain(`#${entries[3]!.seq} ${entries[3]!.hash.slice(0, 12)}`);
  });
});
