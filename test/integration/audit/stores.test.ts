import { AnchorStore } from '../../../lib/audit/anchors';
import type { AuditEntry } from '../../../lib/audit/chain';
import type { AuditEvent, AuditSink } from '../../../lib/audit/log';
import { AuditLog } from '../../../lib/audit/log';
import {
  closeRecord,
  escalateRecord,
  markReminded,
  newApprovalRecord,
  decisionId,
} from '../../../lib/approval/record';
import { ApprovalStore } from '../../../lib/approval/store';
import { PipelineStore } from '../../../lib/pipelines/store';
import { ROLLBACK_PREFIX } from '../../../lib/registry/records';
import { ModelRegistry } from '../../../lib/registry/registry';
import { ArtifactStore } from '../../../lib/storage/blob';
import type { CosmosStore } from '../../../lib/storage/cosmos';
import { useEmulators } from '../../support/emulatorSuite';
import { sampleApprovalInput } from '../../support/approvalSample';

// Each store records its governance events in the audit log, once, even when the audit write
// fails the first time and the operation is retried.

const suite = useEmulators({ blob: true });
let store: CosmosStore;
let audit: AuditLog;
let anchors: AnchorStore;

beforeAll(async () => {
  store = suite.cosmos;
  anchors = new AnchorStore(ArtifactStore.fromConnectionString(suite.blob.connectionString));
  await anchors.ensure();
  audit = new AuditLog(store.container('audit'), { anchors });
});

/** The log, failing its next `failures` writes (after nothing was written) like an outage would. */
function flaky(log: AuditSink, failures: number): AuditSink {
  let left = failures;
  return {
    record: async (e: AuditEvent): Promise<AuditEntry> => {
      if (left > 0) {
        left--;
        throw Object.assign(new Error('audit log unavailable'), { code: 'cosmos_unavailable' });
      }
      return log.record(e);
    },
  };
}

const register = (registry: ModelRegistry, model: string, d: string) =>
  registry.registerVersion({
    modelName: model,
    modelDigest: d.repeat(64),
    artifactUri: `http://127.0.0.1/models/sha256/${d.repeat(64)}`,
    datasetDigest: 'c'.repeat(64),
    metrics: { roc_auc: 0.8 },
    trainingSpec: { algorithm: 'logistic_regression' },
    algorithm: 'logistic_regression',
    runId: `run-${model}-${d}`,
  });

describe('registry', () => {
  it('records deployments and rollbacks, and anchors the head at each production move', async () => {
    const registry = new ModelRegistry(store.container('models'), undefined, audit);
    await register(registry, 'fraud', 'a');
    await register(registry, 'fraud', 'b');
    await registry.moveAlias({
      modelName: 'fraud',
      alias: 'production',
      to: 1,
      by: 'approval:a1',
      reason: 'first',
      approvalRef: 'a1',
      runId: 'r1',
    });
    await registry.moveAlias({
      modelName: 'fraud',
      alias: 'production',
      to: 2,
      by: 'approval:a2',
      reason: 'better',
      approvalRef: 'a2',
    });
    await registry.moveAlias({
      modelName: 'fraud',
      alias: 'production',
      to: 1,
      by: 'ops@example.com',
      reason: `${ROLLBACK_PREFIX}latency`,
      approvalRef: 'a1',
    });
    const entries = await audit.bySubject('model/fraud');
    expect(entries.map((e) => [e.kind, e.subject, e.actor])).toEqual([
      ['alias.moved', 'model/fraud/1', 'approval:a1'],
      ['alias.moved', 'model/fraud/2', 'approval:a2'],
      ['rollback', 'model/fraud/1', 'ops@example.com'],
    ]);
    expect(entries[2]!.data).toMatchObject({ from: 2, to: 1, alias: 'production' });
    const anchored = await anchors.list();
    expect(anchored.map((a) => a.seq)).toEqual(expect.arrayContaining(entries.map((e) => e.seq)));
    expect(await audit.verify()).toMatchObject({ valid: true });
  });

  it('two deployments at once (two models) are both chained', async () => {
    const registry = new ModelRegistry(store.container('models'), undefined, audit);
    await Promise.all([register(registry, 'alpha', 'd'), register(registry, 'beta', 'e')]);
    await Promise.all(
      ['alpha', 'beta'].map((m) =>
        registry.moveAlias({
          modelName: m,
          alias: 'production',
          to: 1,
          by: `approval:${m}`,
          reason: 'go',
          approvalRef: m,
        }),
      ),
    );
    const [a, b] = [
      (await audit.bySubject('model/alpha/1'))[0]!,
      (await audit.bySubject('model/beta/1'))[0]!,
    ];
    expect(Math.abs(a.seq - b.seq)).toBe(1);
    const [first, second] = a.seq < b.seq ? [a, b] : [b, a];
    expect(second.prevHash).toBe(first.hash);
    expect(await audit.verify()).toMatchObject({ valid: true });
  });

  it('a move whose audit write failed is recorded by its retry, once', async () => {
    await register(new ModelRegistry(store.container('models')), 'gamma', 'f');
    const failing = new ModelRegistry(store.container('models'), undefined, flaky(audit, 1));
    const move = {
      modelName: 'gamma',
      alias: 'production',
      to: 1,
      by: 'approval:g',
      reason: 'go',
      approvalRef: 'g',
    };
    await expect(failing.moveAlias(move)).rejects.toThrow('audit log unavailable');
    expect(await audit.bySubject('model/gamma')).toEqual([]);
    // The retry (an activity retry, a second request) finds the alias moved and records the event.
    const { moved } = await failing.moveAlias(move);
    expect(moved).toBe(false);
    await failing.moveAlias(move);
    expect((await audit.bySubject('model/gamma')).map((e) => e.kind)).toEqual(['alias.moved']);
  });
});

describe('approvals', () => {
  it('records requested, decided, reminded, escalated and closed, each once', async () => {
    const approvals = new ApprovalStore(store.container('approvals'), audit);
    const input = sampleApprovalInput({
      runId: 'run-audit-1',
      candidate: { ...sampleApprovalInput().candidate, modelName: 'delta', modelVersion: 3 },
    });
    const record = newApprovalRecord('appr-audit-1', input, new Date('2026-03-01T09:00:00Z'));
    await approvals.createRecord(record);
    await approvals.createRecord(record); // a retried activity
    await approvals.createDecision({
      id: decisionId(record.id, 'alice@example.com'),
      type: 'decision',
      runId: record.runId,
      approvalId: record.id,
      reviewer: 'alice@example.com',
      decision: 'approve',
      comment: 'looks right',
      decidedAt: '2026-03-01T10:00:00.000Z',
      stage: 'primary',
      modelDigest: record.candidate.modelDigest,
      datasetDigest: record.candidate.datasetDigest,
      tokenId: 't'.repeat(16),
      kid: 'k1',
    });
    await approvals.updateRecord(record.runId, record.id, markReminded);
    await approvals.updateRecord(record.runId, record.id, (r) =>
      escalateRecord(r, new Date('2026-03-04T09:00:00Z')),
    );
    await approvals.updateRecord(record.runId, record.id, (r) =>
      closeRecord(
        r,
        'approved',
        ['alice@example.com and erin@example.com approved'],
        new Date('2026-03-04T10:00:00Z'),
      ),
    );
    await approvals.updateRecord(record.runId, record.id, (r) => r); // nothing to change
    const entries = await audit.bySubject('model/delta/3');
    expect(entries.map((e) => [e.kind, e.actor])).toEqual([
      ['approval.requested', 'carol@example.com'],
      ['approval.decided', 'alice@example.com'],
      ['approval.reminded', 'system'],
      ['approval.escalated', 'system'],
      ['approval.approved', 'system'],
    ]);
    expect(entries[1]!.data).toMatchObject({
      decision: 'approve',
      comment: 'looks right',
      approvalId: 'appr-audit-1',
    });
  });

  it('a decision whose audit write failed is recorded when the reviewer (or a retry) posts again', async () => {
    const approvals = new ApprovalStore(store.container('approvals'), flaky(audit, 1));
    const input = sampleApprovalInput({
      runId: 'run-audit-2',
      candidate: { ...sampleApprovalInput().candidate, modelName: 'eps', modelVersion: 1 },
    });
    const record = newApprovalRecord('appr-audit-2', input, new Date('2026-03-01T09:00:00Z'));
    await new ApprovalStore(store.container('approvals'), audit).createRecord(record);
    const decision = {
      id: decisionId(record.id, 'bob@example.com'),
      type: 'decision' as const,
      runId: record.runId,
      approvalId: record.id,
      reviewer: 'bob@example.com',
      decision: 'reject' as const,
      comment: 'drift in region',
      decidedAt: '2026-03-01T10:00:00.000Z',
      stage: 'primary' as const,
      modelDigest: record.candidate.modelDigest,
      datasetDigest: record.candidate.datasetDigest,
      tokenId: 't'.repeat(16),
      kid: 'k1',
    };
    await expect(approvals.createDecision(decision)).rejects.toThrow('audit log unavailable');
    await expect(approvals.createDecision(decision)).rejects.toMatchObject({ code: 'decision_exists' });
    expect((await audit.bySubject('model/eps/1')).map((e) => e.kind)).toEqual([
      'approval.requested',
      'approval.decided',
    ]);
  });
});

describe('pipelines', () => {
  it('records each new definition version with its digest', async () => {
    const pipelines = new PipelineStore<Record<string, unknown>>(store.container('pipelines'), { audit });
    await pipelines.put('zeta', { name: 'zeta', a: 1 }, 'dev@example.com', new Date('2026-03-01T09:00:00Z'));
    await pipelines.put('zeta', { name: 'zeta', a: 2 }, 'dev@example.com', new Date('2026-03-01T09:05:00Z'));
    const entries = await audit.bySubject('pipeline/zeta');
    expect(entries.map((e) => [e.kind, e.data.version])).toEqual([
      ['pipeline.changed', 1],
      ['pipeline.changed', 2],
    ]);
    expect(entries[0]!.data.definitionSha256).not.toBe(entries[1]!.data.definitionSha256);
    expect(await audit.verify()).toMatchObject({ valid: true });
  });
});
