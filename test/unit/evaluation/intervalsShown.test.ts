import { metricsTable } from '../../../cli/sluice';
import { renderApprovalPage } from '../../../lib/approval/page';
import { decide } from '../../../lib/approval/policy';
import { evidenceSchema } from '../../../lib/contracts/approvalRecord';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { parseEvaluationPolicy } from '../../../lib/evaluation/policy';
import { evaluateCandidate } from '../../../lib/evaluation/report';
import { buildEvidence } from '../../../lib/runs/evidence';
import { selectRows } from '../../../lib/training/dataset';
import { loadModel } from '../../../lib/training/models/predict';
import { splitForSpec, trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { sampleApprovalInput, sampleRecord } from '../../support/approvalSample';
import { scoredWith } from '../../support/scored';

describe('absolute intervals where people decide: approval evidence, page and sluice status', () => {
  const ds = syntheticClassification({ rows: 2_000, features: 4, seed: 4 });
  const spec = parseTrainingSpec({
    algorithm: 'logistic_regression',
    target: 'label',
    features: ['x0', 'x1', 'x2', 'x3'],
  });
  const model = loadModel(trainModel(ds, spec).model);
  const holdout = selectRows(ds, splitForSpec(ds, spec).holdout);
  const policy = parseEvaluationPolicy({ primaryMetric: 'roc_auc', bootstrap: { resamples: 200 } });
  const first = evaluateCandidate({
    dataset: holdout,
    candidate: scoredWith(model, holdout, { digest: 'a'.repeat(64) }),
    policy,
  });
  const run = { steps: [] } as unknown as RunDocument;

  it('carries each metric interval of a first model into the approval evidence', () => {
    const evidence = evidenceSchema.parse(buildEvidence({ run, evaluation: first, reports: {} }));
    const auc = evidence.metrics.find((m) => m.name === 'roc_auc')!;
    const ci = first.candidate.intervals!.metrics.roc_auc!;
    expect(auc.candidateCi).toEqual([ci.lower, ci.upper]);
    expect(auc.productionCi).toBeUndefined();
    expect(auc.absoluteCiLevel).toBe(0.95);
    expect(evidence.metrics.every((m) => m.candidateCi !== undefined)).toBe(true);
  });

  it('shows the intervals under the values on the approval page', () => {
    const base = sampleApprovalInput().evidence;
    const record = sampleRecord(undefined, {
      evidence: {
        ...base,
        metrics: [
          {
            name: 'roc_auc',
            candidate: 0.8712,
            production: 0.8503,
            ci: [0.012, 0.03],
            ciLevel: 0.95,
            candidateCi: [0.8601, 0.8824],
            productionCi: [0.8388, 0.8611],
            absoluteCiLevel: 0.9,
          },
        ],
      },
    });
    const now = new Date('2026-03-01T11:00:00.000Z');
    const { body } = renderApprovalPage({
      record,
      decisions: [],
      verdict: decide(record, [], now),
      reviewer: 'bob@example.com',
      linkExpiresAt: new Date(record.deadline),
      now,
      actionPath: '/api/approvals/abc.def',
      requireSignin: false,
    });
    expect(body).toContain('[0.8601, 0.8824]');
    expect(body).toContain('[0.8388, 0.8611]');
    expect(body).toContain('its 90% bootstrap interval on the evaluation rows');
  });

  it('prints the candidate and production intervals in sluice status', () => {
    expect(
      metricsTable({
        evaluation: {
          primaryMetric: 'roc_auc',
          rows: 400,
          candidate: 0.9,
          candidateInterval: { lower: 0.88, upper: 0.92, confidence: 0.95 },
          champion: 0.85,
          championVersion: 2,
          championInterval: { lower: 0.82, upper: 0.875, confidence: 0.95 },
          difference: { estimate: 0.05, lower: 0.03, upper: 0.07, confidence: 0.95 },
          passed: true,
          reasons: [],
        },
      }),
    ).toEqual([
      'evaluation (roc_auc on 400 holdout rows): passed',
      '                    value              interval',
      '  candidate        0.9000  95% [0.8800, 0.9200]',
      '  production (v2)  0.8500  95% [0.8200, 0.8750]',
      '  difference       0.0500  95% [0.0300, 0.0700]',
    ]);
  });
});
