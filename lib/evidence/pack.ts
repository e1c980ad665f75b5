import type { AuditEntry } from '../audit/chain';
import type { AuditLog } from '../audit/log';
import type { LockWait } from '../registry/lockWaits';
import { lockWaitsOf } from '../registry/lockWaits';
import type { ApprovalRecord } from '../contracts/approvalRecord';
import type { RunDocument } from '../contracts/runDocument';
import { readStepOutputs } from '../contracts/run';
import type { ValidationReport } from '../data/checking/report';
import type { EvaluationReport } from '../evaluation/report';
import { evaluationReportSchema } from '../evaluation/report';
import type { Verdict } from '../approval/policy';
import { decide, eligibleReviewers } from '../approval/policy';
import type { ApprovalStore } from '../approval/store';
import type { PipelineDefinition } from '../pipelines/definition';
import type { PipelineStore } from '../pipelines/store';
import { PRODUCTION_ALIAS, ROLLBACK_PREFIX, overrideLabel } from '../registry/records';
import type { ModelVersion, OverrideMark } from '../registry/records';
import type { ModelRegistry } from '../registry/registry';
import { buildEvidence } from '../runs/evidence';
import type { RunStore } from '../runs/store';
import type { ArtifactStore } from '../storage/blob';

/**
 * The evidence pack of one model version: everything an auditor asks about a deployment in one
 * document, assembled from the records Sluice already keeps (nothing here is stored twice): the
 * pipeline definition the run pinned (intended use, owner), the run and its reports (data,
 * training, evaluation), the approvals for this version, its alias moves, and its audit entries
 * with their hashes. JSON for machines; lib/evidence/html.ts renders it for people.
 */

export const EVIDENCE_SCHEMA = 'sluice.evidence/v1';

export interface EvidenceDeps {
  registry: Pick<ModelRegistry, 'getModel'>;
  runs: Pick<RunStore, 'find'>;
  pipelines: Pick<PipelineStore<PipelineDefinition>, 'get'>;
  approvals: Pick<ApprovalStore, 'findByCandidate' | 'readState'>;
  artifacts: Pick<ArtifactStore, 'getBuffer'>;
  audit: Pick<AuditLog, 'bySubject' | 'head'>;
  now: () => Date;
}

export interface EvidenceDecision {
  /** The reviewer the decision counts as (toward the quorum). */
  reviewer: string;
  /** Set when the reviewer's delegate decided (docs/governance.md, "Delegation"): who acted. */
  delegate?: string;
  /** Who decided, as people read it: the reviewer, or "<delegate> on behalf of <reviewer>". */
  decidedBy: string;
  decision: 'approve' | 'reject';
  comment: string;
  decidedAt: string;
  stage: string;
  signedInAs?: string;
  /** Set when the policy did not count this decision toward the quorum, with why. */
  notCounted?: string;
}

export interface EvidenceApproval {
  approvalId: string;
  runId: string;
  status: string;
  requestedBy: string;
  requestedAt: string;
  closedAt?: string;
  reasons: string[];
  /**
   * The policy's own tally (lib/approval/policy.ts `decide`): decisions it ignored (the requester's
   * own, after the deadline, on other digests, by non-reviewers, a second vote of one person) are
   * not counted, and say why in `decisions[].notCounted`.
   */
  quorum: { required: number; approvals: number; rejections: number; reviewers: string[] };
  decisions: EvidenceDecision[];
}

export interface EvidenceDeployment {
  alias: string;
  from: number | null;
  to: number | null;
  at: string;
  by: string;
  reason: string;
  rollback: boolean;
  runId?: string;
  approvalRef?: string;
}

export interface EvidencePack {
  schema: typeof EVIDENCE_SCHEMA;
  generatedAt: string;
  model: {
    name: string;
    version: number;
    modelDigest: string;
    datasetDigest: string;
    artifactUri: string;
    algorithm: string;
    createdAt: string;
    /** Aliases pointing at this version now. */
    aliases: string[];
    inProduction: boolean;
    /** Set when an emergency override deployed it without the quorum: the mark and its label. */
    override?: OverrideMark & { label: string };
  };
  pipeline: {
    name: string;
    version: number;
    description?: string;
    owner?: string;
    intendedUse?: string;
  } | null;
  run: {
    id: string;
    status: string;
    trigger: RunDocument['trigger'];
    createdAt: string;
    endedAt?: string;
    stopReason?: string;
  } | null;
  data: {
    datasetDigest: string;
    source?: RunDocument['source'];
    ingest?: { rows: number; columns: number; sha256: string; bytes: number; format: string; rawUri: string };
    profile?: {
      name: string;
      type: string;
      count: number;
      nulls: number;
      distinct: number;
      summary?: unknown;
    }[];
    validation?: ReturnType<typeof buildEvidence>['validation'] & { headline?: string; reportUri?: string };
    drift?: ReturnType<typeof buildEvidence>['drift'];
    schemaChanges?: ReturnType<typeof buildEvidence>['schemaDiff'];
  };
  training: {
    spec: Record<string, unknown>;
    algorithm: string;
    backend?: string;
    jobId?: string;
    /** A promoted model: where in MLflow it was imported from (no training job ran). */
    importedFrom?: { mlflowUri: string; mlflowModel?: string; mlflowVersion?: string; mlflowRunId?: string };
    codeDigest?: string;
    iterations?: number;
    converged?: boolean;
  };
  evaluation?: {
    primaryMetric: string;
    rows: number;
    metrics: NonNullable<ReturnType<typeof buildEvidence>['metrics']>;
    slices?: ReturnType<typeof buildEvidence>['slices'];
    policy: EvaluationReport['policy'];
    verdict: { passed: boolean; reasons: string[] };
    production: ReturnType<typeof buildEvidence>['production'];
    reportUri: string;
  };
  approvals: EvidenceApproval[];
  deployments: EvidenceDeployment[];
  /**
   * The run's waits for the model's deployment lock before it deployed, from the audit entries
   * below (lib/registry/lockWaits.ts); absent when it never waited.
   */
  lockWaits?: LockWait[];
  lineage: {
    dataset: { sha256: string; uri?: string };
    run: { id: string; pipeline: string; pipelineVersion: number } | null;
    model: { name: string; version: number; digest: string };
    deployments: { alias: string; at: string; by: string; approvalRef?: string }[];
  };
  audit: {
    subject: string;
    /** The chain's head when the pack was made: verify it with `sluice audit verify`. */
    head: { seq: number; hash: string } | null;
    entries: AuditEntry[];
  };
}

const readJson = async (deps: EvidenceDeps, uri: string): Promise<unknown> =>
  JSON.parse((await deps.artifacts.getBuffer(uri)).data.toString('utf8'));

function quorumOf(record: ApprovalRecord, verdict: Verdict): EvidenceApproval['quorum'] {
  return {
    required: verdict.required,
    approvals: verdict.approvedBy.length,
    rejections: verdict.rejectedBy.length,
    reviewers: eligibleReviewers(record),
  };
}

/** The evidence pack of `name` version `version`; undefined when the registry has no such version. */
export async function buildEvidencePack(
  deps: EvidenceDeps,
  name: string,
  version: number,
): Promise<EvidencePack | undefined> {
  const model = await deps.registry.getModel(name);
  const v: ModelVersion | undefined = model?.versions.find((x) => x.version === version);
  if (!model || !v) return undefined;

  const run = await deps.runs.find(v.runId);
  const pipelineName = run?.pipeline ?? v.tags.pipeline;
  const stored = pipelineName ? await deps.pipelines.get(pipelineName, run?.pipelineVersion) : undefined;
  const def = stored?.definition;

  const ingest = run ? readStepOutputs(run.steps, 'ingest') : undefined;
  const validate = run ? readStepOutputs(run.steps, 'validate') : undefined;
  const train = run ? readStepOutputs(run.steps, 'train') : undefined;
  const evaluate = run ? readStepOutputs(run.steps, 'evaluate') : undefined;

  const validation = validate?.reportUri
    ? ((await readJson(deps, validate.reportUri)) as ValidationReport)
    : undefined;
  const evaluation = evaluate?.reportUri
    ? evaluationReportSchema.parse(await readJson(deps, evaluate.reportUri))
    : undefined;
  const summary =
    run && evaluation
      ? buildEvidence({ run, evaluation, reports: run.reports, ...(validation ? { validation } : {}) })
      : undefined;

  const records = await deps.approvals.findByCandidate(name, version);
  const approvals: EvidenceApproval[] = [];
  for (const record of records.sort((a, b) => a.createdAt.localeCompare(b.createdAt))) {
    const state = await deps.approvals.readState(record.runId, record.id);
    const stored = state?.decisions ?? [];
    // The tally the gate itself made (the clock only matters for reminders, not for counting).
    const verdict = decide(record, stored, new Date(record.closedAt ?? record.deadline));
    const notCounted = new Map(verdict.ignored.map((i) => [i.reviewer, i.reason]));
    const decisions: EvidenceDecision[] = stored.map((d) => ({
      reviewer: d.reviewer,
      ...(d.delegate ? { delegate: d.delegate } : {}),
      decidedBy: d.delegate ? `${d.delegate} on behalf of ${d.reviewer}` : d.reviewer,
      decision: d.decision,
      comment: d.comment,
      decidedAt: d.decidedAt,
      stage: d.stage,
      ...(d.principal?.name ? { signedInAs: d.principal.name } : {}),
      ...(notCounted.has(d.reviewer) ? { notCounted: notCounted.get(d.reviewer)! } : {}),
    }));
    approvals.push({
      approvalId: record.id,
      runId: record.runId,
      status: record.status,
      requestedBy: record.requestedBy,
      requestedAt: record.createdAt,
      ...(record.closedAt ? { closedAt: record.closedAt } : {}),
      reasons: record.reasons ?? [],
      quorum: quorumOf(record, verdict),
      decisions,
    });
  }

  const deployments: EvidenceDeployment[] = model.aliasHistory
    .filter((m) => m.to === version || m.from === version)
    .map((m) => ({
      alias: m.alias,
      from: m.from,
      to: m.to,
      at: m.at,
      by: m.by,
      reason: m.reason,
      rollback: m.reason.startsWith(ROLLBACK_PREFIX),
      ...(m.runId ? { runId: m.runId } : {}),
      ...(m.approvalRef ? { approvalRef: m.approvalRef } : {}),
    }));

  const subject = `model/${name}/${version}`;
  const [entries, head] = await Promise.all([deps.audit.bySubject(subject), deps.audit.head()]);
  const lockWaits = lockWaitsOf(entries, v.runId);
  const aliases = Object.entries(model.head.aliases)
    .filter(([, a]) => a.version === version)
    .map(([alias]) => alias);

  return {
    schema: EVIDENCE_SCHEMA,
    generatedAt: deps.now().toISOString(),
    model: {
      name,
      version,
      modelDigest: v.modelDigest,
      datasetDigest: v.datasetDigest,
      artifactUri: v.artifactUri,
      algorithm: v.algorithm,
      createdAt: v.createdAt,
      aliases,
      inProduction: aliases.includes(PRODUCTION_ALIAS),
      ...(v.override ? { override: { ...v.override, label: overrideLabel(v.override) } } : {}),
    },
    pipeline: stored
      ? {
          name: stored.name,
          version: stored.version,
          ...(def?.description ? { description: def.description } : {}),
          ...(def?.owner ? { owner: def.owner } : {}),
          ...(def?.intendedUse ? { intendedUse: def.intendedUse } : {}),
        }
      : null,
    run: run
      ? {
          id: run.id,
          status: run.status,
          trigger: run.trigger,
          createdAt: run.createdAt,
          ...(run.endedAt ? { endedAt: run.endedAt } : {}),
          ...(run.stopReason ? { stopReason: run.stopReason } : {}),
        }
      : null,
    data: {
      datasetDigest: v.datasetDigest,
      ...(run ? { source: run.source } : {}),
      ...(ingest
        ? {
            ingest: {
              rows: ingest.rows,
              columns: ingest.columns,
              sha256: ingest.sha256,
              bytes: ingest.bytes,
              format: ingest.format,
              rawUri: ingest.rawUri,
            },
          }
        : {}),
      ...(validation
        ? {
            profile: validation.columns.slice(0, 200).map((c) => ({
              name: c.name,
              type: c.type,
              count: c.count,
              nulls: c.nulls,
              distinct: c.distinct,
              ...(c.numeric ? { summary: c.numeric } : c.categories ? { summary: c.categories } : {}),
            })),
          }
        : {}),
      ...(summary?.validation
        ? {
            validation: {
              ...summary.validation,
              ...(validate ? { headline: validate.headline, reportUri: validate.reportUri } : {}),
            },
          }
        : {}),
      ...(summary?.drift ? { drift: summary.drift } : {}),
      ...(summary?.schemaDiff ? { schemaChanges: summary.schemaDiff } : {}),
    },
    training: {
      spec: v.trainingSpec,
      algorithm: v.algorithm,
      ...(train && 'jobId' in train ? { backend: train.backend, jobId: train.jobId } : {}),
      ...(train && 'imported' in train
        ? {
            importedFrom: {
              mlflowUri: train.mlflowUri,
              ...(train.mlflowModel ? { mlflowModel: train.mlflowModel } : {}),
              ...(train.mlflowVersion ? { mlflowVersion: train.mlflowVersion } : {}),
              ...(train.mlflowRunId ? { mlflowRunId: train.mlflowRunId } : {}),
            },
          }
        : {}),
      ...(train?.codeDigest ? { codeDigest: train.codeDigest } : {}),
      ...(train?.iterations !== undefined ? { iterations: train.iterations } : {}),
      ...(train?.converged !== undefined ? { converged: train.converged } : {}),
    },
    ...(evaluation && summary && evaluate
      ? {
          evaluation: {
            primaryMetric: evaluation.primaryMetric,
            rows: evaluation.rows,
            metrics: summary.metrics ?? [],
            ...(summary.slices ? { slices: summary.slices } : {}),
            policy: evaluation.policy,
            verdict: {
              passed: evaluation.verdict.passed,
              reasons: evaluation.verdict.reasons.map((r) => r.message),
            },
            production: summary.production,
            reportUri: evaluate.reportUri,
          },
        }
      : {}),
    approvals,
    deployments,
    ...(lockWaits.length ? { lockWaits } : {}),
    lineage: {
      dataset: {
        sha256: v.datasetDigest,
        ...(ingest?.rawUri ? { uri: ingest.rawUri } : run?.source.uri ? { uri: run.source.uri } : {}),
      },
      run: run ? { id: run.id, pipeline: run.pipeline, pipelineVersion: run.pipelineVersion } : null,
      model: { name, version, digest: v.modelDigest },
      deployments: deployments
        .filter((d) => d.to === version)
        .map((d) => ({
          alias: d.alias,
          at: d.at,
          by: d.by,
          ...(d.approvalRef ? { approvalRef: d.approvalRef } : {}),
        })),
    },
    audit: { subject, head: head ?? null, entries },
  };
}
