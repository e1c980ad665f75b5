import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CustomTrainingSpec } from '../contracts/trainingSpec';
import type { Scores } from '../mlmodel/onnxModel';
import type { PythonFunctionScorer } from './scorer';
import { rowsOfDataset } from './scorer';

/**
 * What runs a pipeline's `score` command over rows (lib/training/userJob/score.ts
 * `runScoreCommand`): the model folder on disk, the rows, a scratch folder; the predictions back,
 * already checked.
 */
export type RunScoreCommand = (options: {
  spec: CustomTrainingSpec;
  modelDir: string;
  rows: readonly Record<string, unknown>[];
  workDir: string;
  task?: 'classification' | 'regression';
  classes?: readonly string[];
}) => Promise<Scores>;

/**
 * Scores python_function-only models with the pipeline's `score` command: the folder is downloaded
 * (every file verified against the manifest) into a scratch folder, the rows' features written for
 * the command, and the scratch folder removed afterwards. Candidate and champion are both scored
 * by the pipeline's command, on the same rows.
 */
export function pythonFunctionScorer(
  spec: CustomTrainingSpec,
  run: RunScoreCommand,
  scratchRoot: string = tmpdir(),
): PythonFunctionScorer {
  return async ({ folder, artifact, ds }) => {
    const work = await mkdtemp(path.join(scratchRoot, 'sluice-score-'));
    try {
      const modelDir = path.join(work, 'model');
      await folder.download(modelDir);
      return await run({
        spec,
        modelDir,
        rows: rowsOfDataset(ds, artifact.features),
        workDir: path.join(work, 'run'),
        task: artifact.task,
        ...(artifact.classes ? { classes: artifact.classes } : {}),
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  };
}
