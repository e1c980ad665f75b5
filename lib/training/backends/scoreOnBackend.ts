import type { CustomTrainingSpec } from '../../contracts/trainingSpec';
import type { Scores } from '../../mlmodel/onnxModel';
import { AzureMlTrainingBackend } from './azureml';
import { DatabricksTrainingBackend } from './databricks';
import type { TrainingBackends } from './fromConfig';

/** The shape of lib/scoring/scoreCommand.ts `RunScoreCommand` (declared here: scoring sits above training). */
type ScoreCommand = (options: {
  spec: CustomTrainingSpec;
  modelDir: string;
  rows: readonly Record<string, unknown>[];
  workDir: string;
  task?: 'classification' | 'regression';
  classes?: readonly string[];
}) => Promise<Scores>;

/**
 * A python_function model's `score` command on the run's own backend: an Azure ML pipeline's runs
 * as an Azure ML command job (AzureMlTrainingBackend.score), a Databricks pipeline's as a one-time
 * run (DatabricksTrainingBackend.score); a local pipeline's on the host through `host`, under the
 * host's rules.
 */
export function scoreCommandOnBackend(backends: TrainingBackends, host: ScoreCommand): ScoreCommand {
  return async (options) => {
    if (options.spec.backend === 'azureml') {
      const backend = backends('azureml');
      if (backend instanceof AzureMlTrainingBackend) return backend.score(options);
    }
    if (options.spec.backend === 'databricks') {
      const backend = backends('databricks');
      if (backend instanceof DatabricksTrainingBackend) return backend.score(options);
    }
    return host(options);
  };
}
