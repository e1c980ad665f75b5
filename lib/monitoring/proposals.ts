import { ValidationError } from '../errors';
import type { Keyring } from '../keyring';
import type { Notifier } from '../notify/types';
import type { PipelineDefinition } from '../pipelines/definition';
import { modelNameOf } from '../pipelines/definition';
import type { ModelVersion } from '../registry/records';
import { signApprovalToken, verifyApprovalToken } from '../approval/token';
import type { RunSource } from '../contracts/runDocument';
import type { StartOrchestration } from '../runs/launch';
import { launchRun } from '../runs/launch';
import { newRunId } from '../runs/ids';
import type { RunStore } from '../runs/store';
import type { ArtifactStore } from '../storage/blob';
import type { MonitoringDoc, ProposalDoc } from './records';
import type { MonitoringStore } from './store';

/**
 * Drift-triggered retraining proposals (docs/monitoring.md). A finding takes a proposal slot (the
 * pipeline's cool-down and budget, one ETag-conditioned decision in store.ts), records the proposal
 * with its evidence and sends each of the pipeline's reviewers a signed link, signed as approval
 * links are (lib/approval/token.ts) with `run` = `proposal:<model>` and `apr` = the proposal id.
 * The link's page shows the proposal (GET); a POST decides it once: `accept` starts a run on the
 * pipeline's current data source, `dismiss` records why not.
 */

export const PROPOSAL_RUN_PREFIX = 'proposal:';

export interface ProposalDeps {
  store: Pick<MonitoringStore, 'reserve' | 'createProposal' | 'updateProposal' | 'proposal'>;
  keyring: Keyring;
  notifier: Notifier;
  publicBaseUrl: string;
}

/** The proposal id of a finding: one per model and window end (a retried timer proposes once). */
export function proposalIdOf(doc: Pick<MonitoringDoc, 'window'>): string {
  return `proposal-${doc.window.to.replace(/[-:.]/g, '')}`;
}

export function proposalLink(publicBaseUrl: string, token: string): string {
  return `${publicBaseUrl.replace(/\/$/, '')}/api/proposals/${token}`;
}

/**
 * What a monitoring document's finding leads to: a proposal (created and its reviewers told), or
 * the reason there is none. Returns the finding's `proposal` part.
 */
export async function proposeRetrain(
  deps: ProposalDeps,
  pipeline: { name: string; definition: PipelineDefinition },
  doc: MonitoringDoc,
  now: Date,
): Promise<NonNullable<MonitoringDoc['finding']['proposal']> | undefined> {
  if (!doc.finding.drifted) return undefined;
  const def = pipeline.definition;
  const spec = def.monitoring!;
  const modelName = modelNameOf(def);
  const id = proposalIdOf(doc);
  const slot = await deps.store.reserve(modelName, id, now, spec.proposals);
  if (!slot.ok) return { skipped: slot.skipped, detail: slot.detail };
  const reviewers = [...def.approval.reviewers];
  const proposal: ProposalDoc = {
    id,
    kind: 'proposal',
    modelName,
    pipeline: pipeline.name,
    state: 'open',
    createdAt: now.toISOString(),
    evidence: {
      window: doc.window,
      version: doc.version,
      reasons: doc.finding.reasons,
      driftedColumns: doc.featureDrift.driftedColumns,
      predictionPsi: doc.predictionDrift.psi,
      samples: doc.samples.rows,
    },
    reviewers,
    notified: [],
  };
  await deps.store.createProposal(proposal);
  const stored = await deps.store.proposal(modelName, id);
  if (stored && stored.notified.length >= reviewers.length) return { id };
  const expiresAt = new Date(now.getTime() + spec.proposals.linkHours * 3_600_000);
  const notified: ProposalDoc['notified'] = [];
  for (const reviewer of reviewers) {
    const token = signApprovalToken(deps.keyring, {
      runId: `${PROPOSAL_RUN_PREFIX}${modelName}`,
      approvalId: id,
      reviewer,
      expiresAt,
    });
    const link = proposalLink(deps.publicBaseUrl, token);
    const text = [
      `Live traffic of model ${modelName} (version ${doc.version ?? '—'}) crossed the monitoring policy of pipeline ${pipeline.name}.`,
      '',
      ...doc.finding.reasons.map((r) => `- ${r}`),
      '',
      `Window ${doc.window.from} – ${doc.window.to}, ${doc.samples.rows} sampled rows.`,
      `Accept to retrain on the pipeline's current data source, or dismiss: ${link}`,
      `The link is valid until ${expiresAt.toISOString()}.`,
    ].join('\n');
    const res = await deps.notifier.send({
      key: `proposal:${modelName}:${id}:${reviewer}`,
      kind: 'request',
      to: reviewer,
      subject: `Retrain ${modelName}? Live drift found`,
      text,
      html: `<pre>${escape(text)}</pre>`,
      link,
      runId: `${PROPOSAL_RUN_PREFIX}${modelName}`,
      approvalId: id,
      pipeline: pipeline.name,
    });
    notified.push({ to: reviewer, ref: res.ref });
  }
  await deps.store.updateProposal(modelName, id, (p) => ({ ...p, notified }));
  return { id };
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A verified proposal link: the model, the proposal and the reviewer it was sent to. */
export function verifyProposalToken(
  keyring: Keyring,
  token: string,
  now: Date,
): { modelName: string; proposalId: string; reviewer: string } {
  const claims = verifyApprovalToken(keyring, token, now);
  if (!claims.runId.startsWith(PROPOSAL_RUN_PREFIX) || claims.delegate) {
    throw new ValidationError('token_not_a_proposal', 'This link is not a retraining proposal link.', {
      status: 404,
      field: 'token',
    });
  }
  return {
    modelName: claims.runId.slice(PROPOSAL_RUN_PREFIX.length),
    proposalId: claims.approvalId,
    reviewer: claims.reviewer,
  };
}

export interface DecideDeps {
  store: Pick<MonitoringStore, 'updateProposal' | 'proposal'>;
  runs: RunStore;
  artifacts: Pick<ArtifactStore, 'properties' | 'uri'>;
  /** The pipeline's current version. */
  pipeline(name: string): Promise<{ version: number; definition: PipelineDefinition } | undefined>;
  production(modelName: string): Promise<ModelVersion | undefined>;
  start: StartOrchestration;
}

/**
 * The data a retrain runs on: the schedule's source blob when the pipeline has a schedule, else
 * the source of the run that trained the production version.
 */
export async function currentSource(
  deps: Pick<DecideDeps, 'runs' | 'artifacts' | 'production'>,
  def: PipelineDefinition,
): Promise<RunSource | undefined> {
  const blob = def.schedule?.source.blob;
  if (blob) {
    const [container, ...rest] = blob.split('/');
    const location = { container: container!, path: rest.join('/') };
    if (await deps.artifacts.properties(location)) return { kind: 'blob', uri: deps.artifacts.uri(location) };
  }
  const production = await deps.production(modelNameOf(def));
  const run = production ? await deps.runs.find(production.runId) : undefined;
  return run?.source;
}

/**
 * Decides a proposal once (a second decision is 409 `proposal_decided`): `accept` records the
 * decision with the run id first, then starts the run; `dismiss` records it. The run is requested
 * by the accepting reviewer (`trigger.by`, so the approval gate's "the requester may not approve"
 * applies to them) and names the proposal in `trigger.proposal`. An accept that was recorded but
 * whose run was never created (the launch failed) is completed by the same reviewer accepting
 * again: the run is launched under the recorded id. Callers check sign-in first
 * (`requireSignedInAs`, functions/proposal.ts).
 */
export async function decideProposal(
  deps: DecideDeps,
  claims: { modelName: string; proposalId: string; reviewer: string },
  decision: 'accept' | 'dismiss',
  reason: string | undefined,
  now: Date,
): Promise<ProposalDoc> {
  const current = await deps.store.proposal(claims.modelName, claims.proposalId);
  if (!current)
    throw new ValidationError('proposal_not_found', 'The proposal no longer exists.', { status: 404 });
  if (!current.reviewers.includes(claims.reviewer))
    throw new ValidationError('not_a_reviewer', `${claims.reviewer} is not a reviewer of this proposal.`, {
      status: 403,
    });
  let launch: { runId: string; pipelineVersion: number; source: RunSource } | undefined;
  if (decision === 'accept') {
    const stored = await deps.pipeline(current.pipeline);
    if (!stored)
      throw new ValidationError('pipeline_not_found', `Pipeline ${current.pipeline} no longer exists.`, {
        status: 409,
      });
    const source = await currentSource(deps, stored.definition);
    if (!source)
      throw new ValidationError(
        'no_data_source',
        `Pipeline ${current.pipeline} has no current data source (no schedule source, no production run).`,
        { status: 409 },
      );
    launch = { runId: newRunId(current.pipeline, now), pipelineVersion: stored.version, source };
  }
  let decidedNow = false;
  const updated = await deps.store.updateProposal(claims.modelName, claims.proposalId, (p) => {
    decidedNow = false;
    if (p.state !== 'open') return undefined;
    decidedNow = true;
    return {
      ...p,
      state: decision === 'accept' ? 'accepted' : 'dismissed',
      decision: {
        decision,
        by: claims.reviewer,
        at: now.toISOString(),
        ...(reason ? { reason } : {}),
        ...(launch ? { runId: launch.runId } : {}),
      },
    };
  });
  if (!updated)
    throw new ValidationError('proposal_not_found', 'The proposal no longer exists.', { status: 404 });
  if (!decidedNow) {
    const runId = updated.decision?.runId;
    const unlaunched =
      launch &&
      runId &&
      updated.state === 'accepted' &&
      updated.decision?.by === claims.reviewer &&
      !(await deps.runs.get(current.pipeline, runId));
    if (!unlaunched)
      throw new ValidationError('proposal_decided', `The proposal was already ${updated.state}.`, {
        status: 409,
      });
    // Accepted before, but the run was never created: launch it now under the recorded id.
    launch = { ...launch!, runId: runId! };
  }
  if (launch) {
    await launchRun({ runs: deps.runs }, deps.start, {
      runId: launch.runId,
      pipeline: current.pipeline,
      pipelineVersion: launch.pipelineVersion,
      source: launch.source,
      trigger: { kind: 'http', by: claims.reviewer, proposal: claims.proposalId },
      now,
    });
  }
  return updated;
}
