/**
 * Scripted activity and sub-orchestration answers for {@link drivePipeline}: one pipeline run of
 * the wages example, every answer valid under its activity's output schema. `over` replaces the
 * answer of one call (by name) to steer the run into a gate or a failure.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { PipelineRunInput } from '../../lib/contracts/pipeline';
import type { Script } from './pipelineDriver';
import { sampleTrainingResult } from './trainingSample';

const repo = path.resolve(__dirname, '../..');
const wages = JSON.parse(readFileSync(path.join(repo, 'examples/pipelines/wages.json'), 'utf8')) as {
  modelName: string;
  training: Record<string, unknown>;
  evaluation: Record<string, unknown>;
  approval: Record<string, unknown>;
};

const hex = (c: string) => c.repeat(64);
const blob = (name: string, sha: string, bytes = 100) => ({
  uri: `http://127.0.0.1:10000/devstoreaccount1/${name}`,
  sha256: sha,
  bytes,
});

export function pipelineInput(revision: number | undefined, runId = 'wages-run-1'): PipelineRunInput {
  return {
    runId,
    pipeline: 'wages',
    pipelineVersion: 1,
    source: { kind: 'blob', uri: 'http://127.0.0.1:10000/devstoreaccount1/uploads/wages.csv' },
    requestedBy: 'requester@example.com',
    ...(revision !== undefined ? { revision } : {}),
  };
}

export const MODEL_DIGEST = hex('b');

/** A run that passes every gate and deploys version 3 over production version 2. */
export function happyScript(over: Partial<Script> = {}): Script {
  const evaluation = {
    report: blob('reports/evaluation.json', hex('e')),
    passed: true,
    rows: 107,
    primaryMetric: 'r2',
    candidate: 0.31,
    champion: 0.3,
    championVersion: 2,
    difference: { estimate: 0.01, lower: -0.01, upper: 0.03, confidence: 0.95 },
    reasons: [{ check: 'threshold', passed: true, message: 'r2 0.31 ≥ 0.1' }],
  };
  const candidate = {
    modelName: 'wages',
    modelVersion: 3,
    modelDigest: MODEL_DIGEST,
    datasetDigest: hex('1'),
  };
  const base: Script = {
    beginRun: () => ({ accepted: true }),
    loadPipelineVersion: () => ({
      modelName: wages.modelName,
      training: wages.training,
      evaluation: wages.evaluation,
      approval: wages.approval,
    }),
    ingestDataset: () => ({
      raw: blob('datasets/raw.csv', hex('1'), 20_000),
      columnar: blob('datasets/columnar.bin', hex('2'), 30_000),
      format: 'csv',
      rows: 534,
      columns: 11,
      gzip: false,
      lineEndings: 'lf',
      parseIssues: [],
      parseIssueColumns: 0,
      created: true,
    }),
    resolveReference: () => ({
      production: { version: 2, modelDigest: hex('c') },
      reference: { columnar: blob('datasets/reference.bin', hex('3'), 30_000) },
    }),
    validateDataset: () => ({
      report: blob('reports/validation.json', hex('4')),
      status: 'passed',
      passed: true,
      headline: 'all checks passed',
      errors: 0,
      warnings: 0,
      failedRules: [],
      drift: 'stable',
      driftedColumns: [],
      breakingSchemaChanges: 0,
    }),
    submitTraining: (_i: never, _c, count) => ({ jobId: `job-${count}`, backend: 'local', created: true }),
    trainingMonitor: (input: { jobId: string }) => ({
      jobId: input.jobId,
      state: 'completed',
      polls: 3,
      result: sampleTrainingResult(MODEL_DIGEST),
      logTail: ['done'],
    }),
    evaluateModel: () => evaluation,
    registerModel: () => ({ modelName: 'wages', version: 3, created: true, modelDigest: MODEL_DIGEST }),
    reserveApproval: () => ({ granted: true }),
    buildEvidence: () => ({ summary: 'evidence' }),
    approvalGate: () => ({
      approvalId: 'wages-run-1:approval',
      outcome: 'approved',
      reasons: ['approved by reviewer@example.com'],
      approvedBy: ['reviewer@example.com'],
      rejectedBy: [],
      escalated: false,
      decidedAt: '2026-03-01T13:00:00.000Z',
      candidate,
    }),
    takeDeploymentLock: () => ({ granted: true }),
    deployModel: () => ({
      modelName: 'wages',
      version: 3,
      previous: 2,
      moved: true,
      aliasMoveSeq: 4,
      deployedAt: '2026-03-01T13:00:05.000Z',
      recordedOnRun: true,
    }),
  };
  return { ...base, ...over } as Script;
}

/** A non-retriable failure as an activity returns it. */
export const failure = (code: string, message = `${code} happened`) => ({
  sluiceFailure: { name: 'NonRetriableError', code, message },
});
