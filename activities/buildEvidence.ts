import type { z } from 'zod';
import { buildEvidenceActivity } from '../lib/contracts/pipeline';
import type { ValidationReport } from '../lib/data/checking/report';
import { evaluationReportSchema } from '../lib/evaluation/report';
import { NonRetriableError } from '../lib/errors';
import { buildEvidence as summarize } from '../lib/runs/evidence';
import type { RunStore } from '../lib/runs/store';
import type { ArtifactStore } from '../lib/storage/blob';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof buildEvidenceActivity.input>;
type Output = z.input<typeof buildEvidenceActivity.output>;

/**
 * Reads the run's reports (digest-verified) and summarises them for the approval page. Reads only:
 * a retry finds the same reports and returns the same evidence.
 */
export function buildEvidence(deps: {
  runs: Pick<RunStore, 'get'>;
  artifacts: Pick<ArtifactStore, 'getBuffer'>;
}) {
  const readJson = async (ref: { uri: string; sha256: string }): Promise<unknown> =>
    JSON.parse((await deps.artifacts.getBuffer(ref.uri, { sha256: ref.sha256 })).data.toString('utf8'));
  return async (input: Input): Promise<Output> => {
    const run = await deps.runs.get(input.pipeline, input.runId);
    if (!run) throw new NonRetriableError('run_not_found', `run ${input.runId} not found`);
    const evaluation = evaluationReportSchema.parse(await readJson(input.evaluationReport));
    const validation = input.validationReport
      ? ((await readJson(input.validationReport)) as ValidationReport)
      : undefined;
    const reports: Record<string, string> = { evaluation: input.evaluationReport.uri };
    if (input.validationReport) reports.validation = input.validationReport.uri;
    return summarize({ run, evaluation, reports, ...(validation ? { validation } : {}) }) as Record<
      string,
      unknown
    >;
  };
}

registerActivityFactory(buildEvidenceActivity, (services) => buildEvidence(services));
