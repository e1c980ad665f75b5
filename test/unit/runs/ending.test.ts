/**
 * Ending a run (lib/runs/ending.ts endRun) when one of its releases fails: the deployment lock
 * release and the approval withdrawal are each attempted whatever the other does, and the first
 * failure is thrown (so the caller's retry finishes the job), never leaving the approval pending
 * for good because the lock store failed first.
 */
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { newRunDocument } from '../../../lib/runs/document';
import { endRun, type RunEndingDeps } from '../../../lib/runs/ending';

const AT = '2026-03-01T12:00:00.000Z';

function harness(fail: { lock?: Error; approval?: Error }) {
  let doc: RunDocument = {
    ...newRunDocument({
      id: 'r1',
      pipeline: 'wages',
      pipelineVersion: 1,
      instanceId: 'r1',
      trigger: { kind: 'http', by: 'ana@example.com' },
      source: { kind: 'blob', uri: 'http://x/a.csv' },
      at: AT,
    }),
    status: 'running',
    deploymentLock: { modelName: 'wages', at: AT },
  };
  const calls: string[] = [];
  const deps: RunEndingDeps & { runs: { update: unknown } } = {
    runs: {
      update: async (_p: string, _id: string, change: (r: RunDocument) => RunDocument) => (doc = change(doc)),
    },
    approvals: {
      updateRecord: async () => {
        calls.push('withdraw');
        if (fail.approval) throw fail.approval;
        return { status: 'withdrawn' } as never;
      },
    },
    slots: {
      release: async () => {
        calls.push('slot');
        return undefined as never;
      },
    },
    deployLocks: {
      release: async (modelName: string, runId: string) => {
        calls.push(`lock ${modelName} ${runId}`);
        if (fail.lock) throw fail.lock;
        return true;
      },
    },
  };
  const end = () =>
    endRun(
      deps as Parameters<typeof endRun>[0],
      { id: 'r1', pipeline: 'wages' },
      { status: 'canceled', stopReason: 'canceled', at: AT },
      { withdrawal: () => ({ reason: 'canceled', message: 'This run was canceled.', at: AT }) },
    );
  return { calls, end, doc: () => doc };
}

describe('endRun', () => {
  it('withdraws the approval and releases the slot even when the deployment lock release fails, then throws that failure', async () => {
    const h = harness({ lock: new Error('cosmos 503 on the lock') });
    await expect(h.end()).rejects.toThrow('cosmos 503 on the lock');
    expect(h.calls).toEqual(expect.arrayContaining(['lock wages r1', 'withdraw', 'slot']));
    expect(h.doc().status).toBe('canceled');
  });

  it('releases the deployment lock even when the withdrawal fails, then throws that failure', async () => {
    const h = harness({ approval: new Error('cosmos 503 on the approval') });
    await expect(h.end()).rejects.toThrow('cosmos 503 on the approval');
    expect(h.calls).toEqual(expect.arrayContaining(['lock wages r1', 'withdraw']));
  });

  it('throws the lock failure first when both fail', async () => {
    const h = harness({ lock: new Error('lock down'), approval: new Error('approval down') });
    await expect(h.end()).rejects.toThrow('lock down');
  });

  it('does all three and answers the approval status when nothing fails', async () => {
    const h = harness({});
    await expect(h.end()).resolves.toMatchObject({
      approvalStatus: 'withdrawn',
      run: { status: 'canceled' },
    });
    expect([...h.calls].sort()).toEqual(['lock wages r1', 'slot', 'withdraw']);
  });
});
