import { randomBytes } from 'node:crypto';
import { notifyReviewers } from '../../../activities/notifyReviewers';
import { DelegationStore } from '../../../lib/approval/delegation';
import { submitDecision } from '../../../lib/approval/service';
import { ApprovalStore } from '../../../lib/approval/store';
import { AuditLog } from '../../../lib/audit/log';
import { renderEvidenceHtml } from '../../../lib/evidence/html';
import { buildEvidencePack } from '../../../lib/evidence/pack';
import { parseKeyring } from '../../../lib/keyring';
import type { Notification, Notifier } from '../../../lib/notify';
import { ModelRegistry } from '../../../lib/registry/registry';
import { RunStore } from '../../../lib/runs/store';
import type { CosmosStore } from '../../../lib/storage/cosmos';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosStoreOn, startCosmos } from '../../support/emulators';
import { DATASET_DIGEST, sampleRecord } from '../../support/approvalSample';

// The evidence pack names a delegated decision as "A on behalf of B" (issue 21, Delegation), in
// JSON and HTML, from a real delegated approval on the Cosmos emulator: alice delegates to zoe,
// zoe decides through the link her notification carries, bob decides himself, and the pack of the
// approved version reads both as they happened.

const T0 = new Date('2026-03-01T09:00:00.000Z');
const base = 'http://localhost:7071';

let emulator: CosmosEmulator;
let cosmos: CosmosStore;

beforeAll(async () => {
  emulator = await startCosmos();
  cosmos = cosmosStoreOn(emulator);
  await cosmos.ensure();
}, 60_000);
afterAll(async () => {
  cosmos?.client.dispose();
  await emulator?.stop();
});

/** The pack's dependencies for a version with no run document and no pipeline tag: it reads neither pipelines nor stored reports. */
function packDeps(registry: ModelRegistry, approvals: ApprovalStore, audit: AuditLog, now: () => Date) {
  const notRead = async (): Promise<never> => {
    throw new Error('not read');
  };
  return {
    registry,
    runs: new RunStore(cosmos),
    pipelines: { get: notRead },
    artifacts: { getBuffer: notRead },
    approvals,
    audit,
    now,
  };
}

it('renders a delegate’s decision as "zoe on behalf of alice" in the pack’s JSON and HTML', async () => {
  const clock = new Date(T0.getTime() + 3_600_000);
  const now = () => clock;
  const audit = new AuditLog(cosmos.container('audit'));
  const approvals = new ApprovalStore(cosmos.container('approvals'), audit);
  const delegations = new DelegationStore(cosmos.container('approvals'), audit);
  const registry = new ModelRegistry(cosmos.container('models'), now, audit);
  const keyring = parseKeyring(JSON.stringify({ k1: randomBytes(32).toString('base64') }), 'k1');

  const modelName = 'evidence-dlg';
  const { version } = await registry.registerVersion({
    modelName,
    modelDigest: '4e'.repeat(32),
    artifactUri: `models/${modelName}/1.json`,
    datasetDigest: DATASET_DIGEST,
    metrics: { roc_auc: 0.87 },
    trainingSpec: {},
    algorithm: 'logistic_regression',
    runId: 'run-evidence-dlg',
    tags: {},
  });
  const { record } = await approvals.createRecord(
    sampleRecord(T0, {
      runId: 'run-evidence-dlg',
      candidate: {
        modelName,
        modelVersion: version.version,
        modelDigest: version.modelDigest,
        datasetDigest: version.datasetDigest,
      },
    }),
  );

  await delegations.set(
    'alice@example.com',
    {
      to: 'zoe@example.com',
      until: new Date(T0.getTime() + 48 * 3_600_000).toISOString(),
      reason: 'on leave',
    },
    { now: clock, by: 'operator' },
  );
  const sent: Notification[] = [];
  const notifier: Notifier = {
    channel: 'outbox',
    send: async (m) => {
      sent.push(m);
      return { sent: true, ref: m.key };
    },
  };
  await notifyReviewers({ store: approvals, keyring, notifier, publicBaseUrl: base, delegations, now })({
    runId: record.runId,
    approvalId: record.id,
    kind: 'request',
    recipients: record.policy.reviewers,
  });
  const tokenOf = (m: Notification | undefined) => decodeURIComponent(m!.link!.split('/').pop()!);
  const zoeLink = sent.find((m) => m.to === 'zoe@example.com' && m.key.endsWith(':for:alice@example.com'));
  const bobLink = sent.find((m) => m.to === 'bob@example.com' && !m.key.includes(':for:'));
  const svc = { store: approvals, keyring, now, requireSignin: false, platformAuth: false, delegations };
  const body = (comment: string) => ({
    decision: 'approve',
    comment,
    modelDigest: record.candidate.modelDigest,
    datasetDigest: record.candidate.datasetDigest,
  });
  await submitDecision(svc, tokenOf(zoeLink), body('covering for alice'));
  await submitDecision(svc, tokenOf(bobLink), body('looks good'));

  const pack = await buildEvidencePack(packDeps(registry, approvals, audit, now), modelName, version.version);
  expect(pack).toBeDefined();
  const decisions = pack!.approvals[0]!.decisions;
  expect(decisions).toHaveLength(2);
  expect(decisions.find((d) => d.reviewer === 'alice@example.com')).toMatchObject({
    reviewer: 'alice@example.com',
    delegate: 'zoe@example.com',
    decidedBy: 'zoe@example.com on behalf of alice@example.com',
    decision: 'approve',
    comment: 'covering for alice',
  });
  const bob = decisions.find((d) => d.reviewer === 'bob@example.com')!;
  expect(bob.decidedBy).toBe('bob@example.com');
  expect(bob).not.toHaveProperty('delegate');
  // The quorum counts alice's vote (cast by zoe) as alice's.
  expect(pack!.approvals[0]!.quorum).toMatchObject({ required: 2, approvals: 2 });
  // The audit entries of the version carry the delegate as the actor.
  expect(pack!.audit.entries.map((e) => e.actor)).toContain('zoe@example.com on behalf of alice@example.com');

  const html = renderEvidenceHtml(pack!);
  expect(html).toContain(
    '<tr data-reviewer="alice@example.com"><td><strong>zoe@example.com</strong> on behalf of <strong>alice@example.com</strong></td><td>approve</td>',
  );
  expect(html).toContain('<tr data-reviewer="bob@example.com"><td>bob@example.com</td><td>approve</td>');
}, 60_000);

it('counts toward the quorum only the decisions the policy counts, and says why the others are not', async () => {
  const clock = new Date(T0.getTime() + 3_600_000);
  const now = () => clock;
  const audit = new AuditLog(cosmos.container('audit'));
  const approvals = new ApprovalStore(cosmos.container('approvals'), audit);
  const registry = new ModelRegistry(cosmos.container('models'), now, audit);
  const modelName = 'evidence-tally';
  const { version } = await registry.registerVersion({
    modelName,
    modelDigest: '5f'.repeat(32),
    artifactUri: `models/${modelName}/1.json`,
    datasetDigest: DATASET_DIGEST,
    metrics: { roc_auc: 0.9 },
    trainingSpec: {},
    algorithm: 'logistic_regression',
    runId: 'run-evidence-tally',
    tags: {},
  });
  const { record } = await approvals.createRecord(
    sampleRecord(T0, {
      runId: 'run-evidence-tally',
      candidate: {
        modelName,
        modelVersion: version.version,
        modelDigest: version.modelDigest,
        datasetDigest: version.datasetDigest,
      },
    }),
  );
  const decision = (reviewer: string, modelDigest: string) => ({
    id: `${record.id}:${reviewer}`,
    type: 'decision' as const,
    runId: record.runId,
    approvalId: record.id,
    reviewer,
    decision: 'approve' as const,
    comment: '',
    decidedAt: clock.toISOString(),
    stage: 'primary' as const,
    modelDigest,
    datasetDigest: record.candidate.datasetDigest,
    tokenId: 't',
    kid: 'k1',
  });
  // bob approved what he was shown; alice's approval was of other model bytes.
  await approvals.createDecision(decision('bob@example.com', record.candidate.modelDigest));
  await approvals.createDecision(decision('alice@example.com', '6a'.repeat(32)));

  const pack = await buildEvidencePack(packDeps(registry, approvals, audit, now), modelName, version.version);
  const approval = pack!.approvals[0]!;
  expect(approval.quorum).toMatchObject({ required: 2, approvals: 1, rejections: 0 });
  expect(approval.decisions.find((d) => d.reviewer === 'bob@example.com')).not.toHaveProperty('notCounted');
  expect(approval.decisions.find((d) => d.reviewer === 'alice@example.com')?.notCounted).toBe(
    'decided on a different candidate (model or dataset digest changed)',
  );
  expect(renderEvidenceHtml(pack!)).toContain(
    'not counted: decided on a different candidate (model or dataset digest changed)',
  );
});
