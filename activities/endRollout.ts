import type { z } from 'zod';
import type { ApprovalStore } from '../lib/approval/store';
import type { AuditSink } from '../lib/audit/log';
import { endRolloutActivity } from '../lib/contracts/rollout';
import type { TrafficFigures } from '../lib/contracts/rollout';
import type { Notifier } from '../lib/notify';
import { readRunRollout, recordEnd } from '../lib/rollout/runRecord';
import type { RolloutStore } from '../lib/rollout/store';
import type { RunStore } from '../lib/runs/store';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof endRolloutActivity.input>;
type Output = z.input<typeof endRolloutActivity.output>;

export interface EndRolloutDeps {
  rollouts: Pick<RolloutStore, 'update'>;
  runs: Pick<RunStore, 'update'>;
  approvals: Pick<ApprovalStore, 'getRecord'>;
  notifier: () => Promise<Notifier>;
  /** The audit log: every rollout's end is a governance event (`rollout.ended`). */
  audit: AuditSink;
}

/**
 * Ends a rollout. First the rollout document (so predict stops routing to the candidate within its
 * state TTL: production keeps or regains all traffic), then the run document's rollout record, then
 * the `rollout.ended` audit entry (outcome, code, reason, step, figures), then a message to the run's
 * reviewers with the reason and the figures. Each part is idempotent: the audit entry and the
 * messages have stable keys, so a retry records once and does not send twice where the channel can tell.
 */
export function endRollout(deps: EndRolloutDeps) {
  return async (input: Input): Promise<Output> => {
    let ended = false;
    let candidateVersion: number | undefined;
    // An end that contradicts one already recorded (the orchestration aborting after its completed
    // end failed part-way, say) changes nothing: the first outcome stands, in the document, the run
    // record, the audit trail and the reviewers' mail. The same outcome again is a retry and goes on.
    let contradicts = false;
    await deps.rollouts.update(input.modelName, (current) => {
      if (current?.rolloutId === input.rolloutId) candidateVersion = current.candidate.version;
      if (!current || current.rolloutId !== input.rolloutId || current.state === input.outcome)
        return undefined;
      if (isEnded(current.state)) {
        contradicts = true;
        return undefined;
      }
      ended = true;
      // The step has ended: it has no deadline any more.
      const { deadline: _deadline, ...rest } = current;
      void _deadline;
      return {
        ...rest,
        state: input.outcome,
        ...(input.outcome === 'completed' ? {} : { percent: 0 }),
        updatedAt: input.at,
        endedAt: input.at,
        reason: input.reason.slice(0, 2_000),
      };
    });
    if (contradicts) return { ended: false, notified: 0 };
    await deps.runs.update(input.pipeline, input.runId, (run) => ({
      ...run,
      rollout: recordEnd(
        readRunRollout(run.rollout, {
          rolloutId: input.rolloutId,
          modelName: input.modelName,
          strategy: input.strategy,
        }),
        {
          outcome: input.outcome,
          reason: input.reason,
          step: input.step,
          at: input.at,
          ...(input.figures ? { figures: input.figures } : {}),
          ...(input.breaches ? { breaches: input.breaches } : {}),
          ...(input.code ? { code: input.code } : {}),
        },
      ),
    }));
    // Recorded like the other governance decisions: who (the system, on the guards' or a deadline's
    // word, or an operator named in the reason), what, and the figures it was decided on.
    await deps.audit.record({
      kind: 'rollout.ended',
      actor: 'system',
      subject:
        candidateVersion === undefined
          ? `model/${input.modelName}`
          : `model/${input.modelName}/${candidateVersion}`,
      data: {
        rolloutId: input.rolloutId,
        runId: input.runId,
        pipeline: input.pipeline,
        strategy: input.strategy,
        outcome: input.outcome,
        ...(input.code ? { code: input.code } : {}),
        reason: input.reason,
        step: input.step,
        ...(input.figures ? { figures: input.figures } : {}),
        ...(input.breaches ? { breaches: input.breaches } : {}),
      },
      // One entry per rollout: whatever ends it first is its end.
      key: `rollout:${input.rolloutId}:ended`,
    });
    const approval = await deps.approvals.getRecord(input.runId, input.approvalId);
    if (!approval) return { ended, notified: 0 };
    const notifier = await deps.notifier();
    const c = approval.candidate;
    const what = { completed: 'completed', rolled_back: 'rolled back', aborted: 'aborted' }[input.outcome];
    const subject = `Rollout of ${c.modelName} version ${c.modelVersion} ${what}`;
    const lines = [
      `The ${input.strategy} rollout of ${c.modelName} version ${c.modelVersion} (run ${input.runId} of ${input.pipeline}) ${what} at step ${input.step + 1}.`,
      input.outcome === 'completed'
        ? 'Production now serves this version.'
        : 'Production keeps serving the previous version; the candidate serves no traffic.',
      `Why: ${input.reason}`,
      ...(input.figures ? ['', 'Figures of the step:', ...figureLines(input.figures)] : []),
    ];
    const text = lines.join('\n');
    let notified = 0;
    for (const to of [...new Set(approval.policy.reviewers.map((r) => r.trim().toLowerCase()))]) {
      const res = await notifier.send({
        key: `rollout:${input.rolloutId}:${input.outcome}:${to}`,
        kind: 'outcome',
        to,
        subject,
        text,
        html: `<pre>${escapeHtml(text)}</pre>`,
        runId: input.runId,
        approvalId: input.approvalId,
        pipeline: input.pipeline,
      });
      if (res.sent) notified++;
    }
    return { ended, notified };
  };
}

function figureLines(f: TrafficFigures): string[] {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)} %`);
  return [
    `  candidate requests: ${f.requests} (errors ${f.errors}, ${pct(f.errorRate)})`,
    `  candidate latency p99: ${f.latencyP99Ms === null ? 'n/a' : `≤ ${f.latencyP99Ms} ms`}`,
    `  prediction PSI vs holdout: ${f.psi === null ? 'n/a' : f.psi.toFixed(3)} over ${f.predictedRows} rows`,
    ...(f.compared > 0 ? [`  shadow agreement: ${pct(f.agreement)} of ${f.compared} rows`] : []),
    `  production requests: ${f.productionRequests}`,
  ];
}

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );

registerActivityFactory(endRolloutActivity, (services) =>
  endRollout({
    rollouts: services.rollouts,
    runs: services.runs,
    approvals: services.approvals,
    notifier: async () => (await services.approval()).notifier,
    audit: services.audit,
  }),
);

const isEnded = (state: string): boolean =>
  state === 'completed' || state === 'rolled_back' || state === 'aborted';
