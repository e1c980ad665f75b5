import { buildEvidenceActivity } from '../lib/contracts/pipeline';
import type { ValidationReport } from '../lib/data/report';
import { evaluationReportSchema } from '../lib/evaluation/report';
import { NonRetriableError } from '../lib/errors';
import { getRunDeps } from '../lib/runs/deps';
import { buildEvidence } from '../lib/runs/evidence';
import { registerActivity } from './support/define';

/** Reads the run's reports (digest-verified) and summarises them for the approval page. */
registerActivity(buildEvidenceActivity, async (input) => {
  const deps = await getRunDeps();
  const run = await deps.runs.get(input.pipeline, input.runId);
  if (!run) throw new NonRetriableError('run_not_found', `run ${input.runId} not found`);
  const evaluation = evaluationReportSchema.parse(
    JSON.parse(
      (
        await deps.artifacts.getBuffer(input.evaluationReport.uri, { sha256: input.evaluationReport.sha256 })
      ).data.toString('utf8'),
    ),
  );
  const validation = input.validationReport
    ? (JSON.parse(
        (
          await deps.artifacts.getBuffer(input.validationReport.uri, {
            sha256: input.validationReport.sha256,
          })
        ).data.toString('utf8'),
      ) as ValidationReport)
    : undefined;
  const reports: Record<string, string> = { evaluation: input.evaluationReport.uri };
  if (input.validationReport) reports.validation = input.validationReport.uri;
  return buildEvidence({ run, evaluation, reports, ...(validation ? { validation } : {}) }) as Record<
    string,
    unknown
  >;
});
