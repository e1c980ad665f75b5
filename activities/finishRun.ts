import { finishRunActivity } from '../lib/contracts/pipeline';
import { getRunDeps } from '../lib/runs/deps';
import { terminalRunStatuses } from '../lib/runs/model';
import { registerActivity } from './support/define';

/** Ends the run document: final status, the gate that stopped it and why, reports; idempotent. */
registerActivity(finishRunActivity, async (input) => {
  const deps = await getRunDeps();
  // A run canceled from the API is already terminal: the orchestration's own ending must not
  // overwrite that.
  const run = await deps.runs.update(input.pipeline, input.runId, (r) =>
    terminalRunStatuses.has(r.status)
      ? r
      : {
          ...r,
          status: input.status,
          ...(input.stopReason ? { stopReason: input.stopReason } : {}),
          ...(input.reason ? { reason: input.reason } : {}),
          ...(input.approval ? { approval: input.approval } : {}),
          ...(input.deployment ? { deployment: input.deployment } : {}),
          reports: { ...r.reports, ...(input.reports ?? {}) },
          // Steps still pending or running when the run ends did not happen.
          steps: r.steps.map((s) =>
            s.status === 'pending' || s.status === 'running'
              ? {
                  ...s,
                  status: input.status === 'canceled' ? 'canceled' : 'skipped',
                  endedAt: s.startedAt ? input.at : s.endedAt,
                }
              : s,
          ),
          endedAt: r.endedAt ?? input.at,
          updatedAt: input.at,
        },
  );
  return { status: run.status };
});
