import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CustomTrainingSpec } from '../../contracts/trainingSpec';
import { SCORE_COMMAND_VARIABLE_NAMES } from '../../contracts/job';
import { NonRetriableError } from '../../errors';
import type { Scores } from '../../mlmodel/onnxModel';
import { readManifest } from '../../mlmodel/folder';
import { parseCommand } from '../userJob/command';
import { checkedPredictions, writeScoreInput } from '../userJob/score';
import { shellQuote } from './azuremlUserJob';
import type { ArtifactStore } from '../../storage/blob';
import { jobPath } from './types';

/**
 * Scoring a python_function-only model on Azure ML with the pipeline's `score` command, "on the
 * same backend" as its training: a command job per model (candidate, champion) in the training's
 * code asset and environment, with the model folder (`uri_folder` input `model`) and the rows'
 * features (`uri_file` input `input`) staged read-only in `jobs/<scoreJobId>/`, and the
 * predictions written to the job's own output container through its own SAS datastore (as a
 * training job's model: see azureml.ts). The predictions get the checks a host score command's get
 * (`checkedPredictions`).
 *
 * The score job's id is derived from the model folder's digest, the rows, the command and the task,
 * so an activity retried after a crash finds the job it started instead of starting another.
 */

export interface RemoteScoreInput {
  spec: CustomTrainingSpec;
  /** The model folder on disk (downloaded and verified by the caller). */
  modelDir: string;
  rows: readonly Record<string, unknown>[];
  /** A fresh scratch folder: input.csv goes here. */
  workDir: string;
  task?: 'classification' | 'regression';
  classes?: readonly string[];
}

/** The score command's path variables as Azure ML bindings. */
const SCORE_BINDINGS: Record<string, string> = {
  SLUICE_MODEL: '${{inputs.model}}',
  SLUICE_INPUT: '${{inputs.input}}',
  SLUICE_PREDICTIONS: '${{outputs.predictions}}/predictions.csv',
};

/**
 * The score command as the shell line Azure ML runs in the code folder: split into words by Sluice,
 * each written back shell-quoted; path placeholders become bindings, the others their values; `env`
 * sets the path variables for the process.
 */
export function azuremlScoreCommandLine(command: string, values: Record<string, string>): string {
  const words = parseCommand<string>(command, SCORE_COMMAND_VARIABLE_NAMES).map((word) =>
    word
      .map((p) => {
        if ('text' in p) return p.text === '' ? "''" : shellQuote(p.text);
        const binding = SCORE_BINDINGS[p.variable];
        if (binding) return `"${binding}"`;
        const v = values[p.variable];
        if (v === undefined)
          throw new NonRetriableError('unknown_placeholder', `\${${p.variable}} has no value for this job`);
        return v === '' ? "''" : shellQuote(v);
      })
      .join(''),
  );
  const env = Object.entries(SCORE_BINDINGS).map(([k, b]) => `${k}="${b}"`);
  return ['env', ...env, ...words].join(' ');
}

/** What a score job needs prepared: its id, the staged input, the rows and the variables. */
export interface PreparedScore {
  jobId: string;
  rows: number;
  input: Buffer;
  model: { path: string; local: string }[];
  values: Record<string, string>;
  command: string;
}

/**
 * Stages a score job's inputs where the job can read but not write (Sluice's `jobs` container):
 * the model folder under `model/` and the rows as `input.csv`. Both remote backends use it.
 */
export async function stageScoreInputs(
  store: ArtifactStore,
  jobsContainer: string,
  jobId: string,
  prepared: PreparedScore,
): Promise<void> {
  for (const f of prepared.model) {
    await store.put(
      { container: jobsContainer, path: jobPath(jobId, `model/${f.path}`) },
      await readFile(f.local),
      {
        contentType: 'application/octet-stream',
        condition: 'overwrite',
      },
    );
  }
  await store.put({ container: jobsContainer, path: jobPath(jobId, 'input.csv') }, prepared.input, {
    contentType: 'text/csv',
    condition: 'overwrite',
  });
}

export async function prepareScore(input: RemoteScoreInput, maxModelBytes: number): Promise<PreparedScore> {
  const { spec } = input;
  if (!spec.score)
    throw new NonRetriableError(
      'score_command_required',
      'the model has no ONNX flavor (python_function only), so the pipeline must name a `score` command to evaluate it',
    );
  await mkdir(input.workDir, { recursive: true });
  const written = await writeScoreInput(input, path.join(input.workDir, 'input.csv'));
  const bytes = await readFile(written.file);
  const model = await readManifest(input.modelDir, { maxBytes: maxModelBytes });
  const task = input.task ?? spec.task;
  const jobId = `sluice-score-${createHash('sha256')
    .update(
      JSON.stringify([
        model.digest,
        createHash('sha256').update(bytes).digest('hex'),
        spec.score,
        task ?? '',
        spec.hyperparameters,
      ]),
    )
    .digest('hex')
    .slice(0, 40)}`;
  const values: Record<string, string> = {
    SLUICE_FEATURES: JSON.stringify(spec.features),
    SLUICE_TARGET: spec.target,
    SLUICE_HYPERPARAMETERS: JSON.stringify(spec.hyperparameters),
    ...(task ? { SLUICE_TASK: task } : {}),
    PYTHONUNBUFFERED: '1',
  };
  return {
    jobId,
    rows: written.rows,
    input: bytes,
    model: model.manifest.map((f) => ({
      path: f.path,
      local: path.join(input.modelDir, ...f.path.split('/')),
    })),
    values,
    command: azuremlScoreCommandLine(spec.score, values),
  };
}

/** The predictions a finished score job wrote, checked; `predictions_missing` when it wrote none. */
export function scoresOf(text: string | undefined, prepared: PreparedScore, input: RemoteScoreInput): Scores {
  if (text === undefined)
    throw new NonRetriableError(
      'predictions_missing',
      `the score job ${prepared.jobId} ended without writing predictions.csv to its output`,
    );
  return checkedPredictions(text, prepared.rows, input.task ?? input.spec.task, input.classes);
}
