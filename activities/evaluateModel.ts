import type { z } from 'zod';
import { evaluateModelActivity } from '../lib/contracts/training';
import { ingestBlob, loadColumnar } from '../lib/data/datasets';
import { NonRetriableError } from '../lib/errors';
import type { MetricIntervals } from '../lib/evaluation/report';
import { evaluateCandidate, scoreForEvaluation } from '../lib/evaluation/report';
import { isCustomSpec, trainingSpecSchema } from '../lib/contracts/trainingSpec';
import { pythonFunctionScorer } from '../lib/scoring/scoreCommand';
import type { PythonFunctionScorer, ScorerDeps } from '../lib/scoring/scorer';
import { loadScorer } from '../lib/scoring/scorer';
import type { ModelVersion } from '../lib/registry/records';
import resources from '../lib/resources.json';
import type { ColumnarDataset } from '../lib/training/dataset';
import { concatDatasets, datasetFromTable, selectRows } from '../lib/training/dataset';
import type { TrainingDeps } from '../lib/services';
import { trainingDeps } from '../lib/services';
import { splitForSpec } from '../lib/training/models/train';
import { parseDatasetBlob } from '../lib/storage/datasetSource';
import { PRODUCTION_ALIAS } from '../lib/registry/records';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof evaluateModelActivity.input>;
type Output = z.input<typeof evaluateModelActivity.output>;

/**
 * Champion/challenger evaluation on the same rows: the candidate and the model the `production`
 * alias points at are scored on the run's holdout plus the pipeline's golden set; the paired
 * bootstrap, guardrails and slice guards of the policy decide. Each side is loaded through the scorer
 * (lib/scoring): a legacy JSON, an ONNX model folder (the shared session cache) or a python_function
 * folder, verified against its digest first; the report sees only scores, so a scikit-learn
 * champion and a built-in candidate compare on the same rows. The full report goes to Blob (content-addressed); the activity
 * returns the verdict and a short summary.
 */
export function evaluateModel(
  deps: Pick<TrainingDeps, 'store' | 'registry' | 'contractOf' | 'onnx' | 'scoreCommand'>,
) {
  return async (input: Input): Promise<Output> => {
    const { store, registry } = deps;
    // A python_function-only candidate is scored by this pipeline's `score` command.
    const scorers = {
      store,
      onnx: deps.onnx,
      ...(isCustomSpec(input.spec) && deps.scoreCommand
        ? { pythonFunction: pythonFunctionScorer(input.spec, deps.scoreCommand) }
        : {}),
    };
    // Opened (and verified) before any data is read: a bad candidate fails fast.
    const candidate = await loadScorer(scorers, {
      uri: input.candidate.uri,
      digest: input.candidate.sha256,
      ...(input.candidateArtifact ? { artifact: input.candidateArtifact } : {}),
    });

    const full = datasetFromTable(await loadColumnar(store, input.dataset));
    const parts: ColumnarDataset[] = [selectRows(full, splitForSpec(full, input.spec).holdout)];
    if (input.goldenSet) {
      const contract = input.pipeline
        ? await deps.contractOf?.(input.pipeline.name, input.pipeline.version)
        : undefined;
      if (input.pipeline && !contract) {
        throw new NonRetriableError(
          'pipeline_not_found',
          `pipeline ${input.pipeline.name} has no version ${input.pipeline.version}`,
        );
      }
      const { table } = await ingestBlob(
        store,
        parseDatasetBlob(input.goldenSet.blob, 'goldenSet.blob'),
        contract ? { contract } : {},
      );
      parts.push(datasetFromTable(table));
    }
    const evaluation = concatDatasets(parts);

    const championVersion = await registry.resolveAlias(input.modelName, PRODUCTION_ALIAS);
    // The champion as it was registered: a legacy JSON (no artifact) or a model folder, whoever
    // trained it; a python_function champion by its own recorded score command (championScorers).
    // With its metrics as recorded at registration: what championCollapse holds it to.
    const champion = championVersion
      ? {
          ...(await scoreForEvaluation(
            await loadScorer(championScorers({ ...deps, store }, championVersion), {
              uri: championVersion.artifactUri,
              digest: championVersion.modelDigest,
              ...(championVersion.artifact ? { artifact: championVersion.artifact } : {}),
            }),
            evaluation,
            championVersion.version,
          )),
          recorded: championVersion.metrics,
        }
      : undefined;
    const report = evaluateCandidate({
      dataset: evaluation,
      candidate: await scoreForEvaluation(candidate, evaluation),
      ...(champion ? { champion } : {}),
      policy: input.policy,
    });
    const stored = await store.putContentAddressed(
      resources.blobContainers.reports,
      JSON.stringify({ runId: input.runId, modelName: input.modelName, ...report }),
      { prefix: 'evaluations', contentType: 'application/json' },
    );
    const pm = report.primaryMetric;
    const reasons = [
      ...report.verdict.reasons.filter((r) => !r.passed),
      ...report.verdict.reasons.filter((r) => r.passed),
    ]
      .slice(0, 30)
      .map((r) => ({
        check: r.check,
        passed: r.passed,
        message: r.message.length > 300 ? `${r.message.slice(0, 297)}...` : r.message,
      }));
    const diff = report.comparison?.difference;
    const intervalOf = (side: { intervals?: MetricIntervals } | null) => {
      const i = side?.intervals;
      const m = i?.metrics[pm];
      return i && m ? { lower: m.lower, upper: m.upper, confidence: i.confidence } : undefined;
    };
    const candidateInterval = intervalOf(report.candidate);
    const championInterval = intervalOf(report.champion);
    return {
      report: { uri: stored.uri, sha256: stored.sha256 },
      passed: report.verdict.passed,
      rows: report.rows,
      primaryMetric: pm,
      candidate: report.candidate.metrics[pm] ?? null,
      champion: report.champion?.metrics[pm] ?? null,
      ...(champion ? { championVersion: champion.version } : {}),
      ...(candidateInterval ? { candidateInterval } : {}),
      ...(championInterval ? { championInterval } : {}),
      ...(diff
        ? {
            difference: {
              estimate: diff.estimate,
              lower: diff.lower,
              upper: diff.upper,
              confidence: diff.confidence,
            },
          }
        : {}),
      reasons,
    };
  };
}

/**
 * How the champion is scored: ONNX and legacy JSON in-process; a python_function-only champion by
 * the `score` command and `code` recorded on its own registry version (the spec that trained it),
 * never by the candidate's pipeline, whose author is the one being judged. A champion whose version
 * records no `score` command fails with `champion_not_scorable` when it must be scored.
 */
export function championScorers(
  deps: Pick<TrainingDeps, 'store' | 'onnx' | 'scoreCommand'>,
  champion: Pick<ModelVersion, 'version' | 'trainingSpec'>,
): ScorerDeps {
  const recorded = trainingSpecSchema.safeParse(champion.trainingSpec);
  const spec = recorded.success && isCustomSpec(recorded.data) ? recorded.data : undefined;
  const pythonFunction: PythonFunctionScorer =
    spec?.score !== undefined && deps.scoreCommand
      ? pythonFunctionScorer(spec, deps.scoreCommand)
      : () =>
          Promise.reject(
            new NonRetriableError(
              'champion_not_scorable',
              `the production model (version ${champion.version}) has no ONNX flavor and its registry version records no score command${spec?.score !== undefined ? ' this host can run' : ''}, so it cannot be scored; deploy a model with an ONNX flavor, or one whose pipeline names a score command`,
            ),
          );
  return { store: deps.store, onnx: deps.onnx, pythonFunction };
}

registerActivityFactory(evaluateModelActivity, (services) => evaluateModel(trainingDeps(services)));
