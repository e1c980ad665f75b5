import type { ApprovalDecision, ApprovalRecord, NewApprovalInput } from '../../lib/contracts/approvalRecord';
import { decisionId, newApprovalRecord } from '../../lib/approval/record';

export const MODEL_DIGEST = '3f'.repeat(32);
export const DATASET_DIGEST = 'a7'.repeat(32);

/** Realistic evidence for the churn demo: what the approval page and tests render. */
export function sampleApprovalInput(over: Partial<NewApprovalInput> = {}): NewApprovalInput {
  return {
    runId: 'run-20260301-0001',
    pipeline: 'churn',
    requestedBy: 'carol@example.com',
    candidate: {
      modelName: 'churn',
      modelVersion: 7,
      modelDigest: MODEL_DIGEST,
      datasetDigest: DATASET_DIGEST,
    },
    policy: {
      reviewers: ['alice@example.com', 'bob@example.com', 'dan@example.com'],
      requiredApprovals: 2,
      timeout: '72h',
      reminderAt: 0.5,
      onTimeout: { action: 'escalate', reviewers: ['erin@example.com'], timeout: '24h' },
    },
    evidence: {
      production: { modelVersion: 6, modelDigest: '9c'.repeat(32) },
      primaryMetric: 'roc_auc',
      verdict: {
        passed: true,
        reasons: [
          'roc_auc improved by 0.021 (95% CI +0.012 to +0.030), above the 0.005 minimum',
          'no slice of region worse by more than 0.02',
        ],
      },
      metrics: [
        { name: 'roc_auc', candidate: 0.8712, production: 0.8503, ci: [0.012, 0.03], ciLevel: 0.95 },
        { name: 'f1_macro', candidate: 0.7421, production: 0.7398, ci: [-0.004, 0.009], ciLevel: 0.95 },
        { name: 'accuracy', candidate: 0.8134, production: 0.8102, ci: [-0.001, 0.007], ciLevel: 0.95 },
        {
          name: 'log_loss',
          candidate: 0.3912,
          production: 0.4177,
          ci: [-0.039, -0.014],
          ciLevel: 0.95,
          higherIsBetter: false,
        },
      ],
      slices: {
        column: 'region',
        metric: 'roc_auc',
        rows: [
          { value: 'EU', count: 4210, candidate: 0.862, production: 0.851, ok: true },
          { value: 'NA', count: 5133, candidate: 0.881, production: 0.853, ok: true },
          { value: 'APAC', count: 1687, candidate: 0.84, production: 0.846, ok: true },
          { value: '<script>alert(1)</script>', count: 3, candidate: 0.5, production: 0.9, ok: false },
        ],
      },
      validation: {
        passed: true,
        rows: 55_030,
        checks: 38,
        issues: [
          { severity: 'warning', code: 'null_rate', message: 'tenure_months is 1.8% null (limit 5%)' },
        ],
      },
      drift: {
        drifted: false,
        summary: '1 of 12 features above its PSI warning level; none above the drift threshold',
        features: [
          { feature: 'monthly_charges', statistic: 'psi', value: 0.14, threshold: 0.2, drifted: false },
          { feature: 'tenure_months', statistic: 'psi', value: 0.03, threshold: 0.2, drifted: false },
        ],
      },
      schemaDiff: [{ change: 'added', column: 'support_calls_90d', to: 'integer' }],
      timeline: [
        {
          step: 'ingest',
          status: 'succeeded',
          startedAt: '2026-03-01T09:00:00.000Z',
          endedAt: '2026-03-01T09:00:02.400Z',
        },
        {
          step: 'validate',
          status: 'succeeded',
          startedAt: '2026-03-01T09:00:02.500Z',
          endedAt: '2026-03-01T09:00:04.100Z',
        },
        {
          step: 'train',
          status: 'succeeded',
          startedAt: '2026-03-01T09:00:04.200Z',
          endedAt: '2026-03-01T09:01:10.000Z',
        },
        {
          step: 'evaluate',
          status: 'succeeded',
          startedAt: '2026-03-01T09:01:10.100Z',
          endedAt: '2026-03-01T09:01:13.900Z',
        },
        { step: 'approve', status: 'running', startedAt: '2026-03-01T09:01:14.000Z' },
      ],
      reports: { evaluation: 'reports/churn/run-20260301-0001/evaluation.json' },
    },
    ...over,
  };
}

export function sampleRecord(
  now = new Date('2026-03-01T09:01:14.000Z'),
  over: Partial<NewApprovalInput> = {},
): ApprovalRecord {
  const input = sampleApprovalInput(over);
  return newApprovalRecord(`${input.runId}:approval`, input, now);
}

export function sampleDecision(
  record: ApprovalRecord,
  reviewer: string,
  decision: 'approve' | 'reject',
  decidedAt: string,
  comment = '',
): ApprovalDecision {
  return {
    id: decisionId(record.id, reviewer),
    type: 'decision',
    runId: record.runId,
    approvalId: record.id,
    reviewer,
    decision,
    comment,
    decidedAt,
    stage: record.stage,
    modelDigest: record.candidate.modelDigest,
    datasetDigest: record.candidate.datasetDigest,
    tokenId: 'tok',
    kid: 'k1',
  };
}
