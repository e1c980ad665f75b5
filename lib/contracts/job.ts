import { z } from 'zod';
import { commandLineSchema, timeLimitSecondsSchema, userHyperparametersSchema } from './trainingSpec';

/**
 * `sluice.job/v1`: the contract between Sluice and a user's own training code, the same on every
 * backend. Sluice hands the job the validated dataset, already split, through `SLUICE_*`
 * environment variables (the same names work as `${SLUICE_*}` placeholders in the command); the job
 * writes an MLflow model folder to `SLUICE_OUTPUT`. docs/training.md describes it for users.
 * Plain data with no I/O: the job spec travels in activity inputs.
 */

export const JOB_CONTRACT_VERSION = 'sluice.job/v1';

/** Every variable of the contract, with what it holds (the docs table is generated from the same text). */
export const SLUICE_VARIABLES = {
  SLUICE_JOB_ID: 'the job id (unique per attempt of a run)',
  SLUICE_TRAIN: 'training rows, CSV file (header line first)',
  SLUICE_VALIDATION: 'validation rows, CSV file (may hold only the header)',
  SLUICE_HOLDOUT: 'holdout rows, CSV file (may hold only the header); Sluice evaluates on the same rows',
  SLUICE_TRAIN_PARQUET: 'the training rows as Parquet',
  SLUICE_VALIDATION_PARQUET: 'the validation rows as Parquet',
  SLUICE_HOLDOUT_PARQUET: 'the holdout rows as Parquet',
  SLUICE_CONTRACT: 'the dataset contract, JSON file',
  SLUICE_TARGET: 'the target column',
  SLUICE_FEATURES: 'the feature columns, a JSON list of strings',
  SLUICE_TASK: '"classification" or "regression"',
  SLUICE_HYPERPARAMETERS: "the pipeline's hyperparameters, JSON, verbatim",
  SLUICE_SEED: 'the seed, a decimal integer',
  SLUICE_OUTPUT: 'an empty folder the job writes its MLflow model folder to',
} as const;

export type SluiceVariable = keyof typeof SLUICE_VARIABLES;
export const SLUICE_VARIABLE_NAMES = Object.keys(SLUICE_VARIABLES) as SluiceVariable[];

export function isSluiceVariable(name: string): name is SluiceVariable {
  return Object.hasOwn(SLUICE_VARIABLES, name);
}

/**
 * The variables of a `score` command (a python_function-only model scored by the user's own code),
 * on top of SLUICE_FEATURES, SLUICE_TARGET, SLUICE_TASK and SLUICE_HYPERPARAMETERS of the job's
 * contract. The command writes one prediction per input row to SLUICE_PREDICTIONS
 * (docs/training.md, "Scoring a model without ONNX").
 */
export const SLUICE_SCORE_VARIABLES = {
  SLUICE_MODEL: 'the model folder to score with (what the training job wrote to SLUICE_OUTPUT)',
  SLUICE_INPUT: 'the rows to score, CSV file (header first; the feature columns in SLUICE_FEATURES order)',
  SLUICE_PREDICTIONS:
    'the file to write: CSV with `label` and one probability column per class (classification) or `value` (regression), or the same as JSON Lines',
} as const;

export type ScoreVariable = keyof typeof SLUICE_SCORE_VARIABLES;
export const SLUICE_SCORE_VARIABLE_NAMES = Object.keys(SLUICE_SCORE_VARIABLES) as ScoreVariable[];

/** The variables a score command gets (and may use as placeholders). */
export const SCORE_COMMAND_VARIABLE_NAMES: readonly (ScoreVariable | SluiceVariable)[] = [
  ...SLUICE_SCORE_VARIABLE_NAMES,
  'SLUICE_FEATURES',
  'SLUICE_TARGET',
  'SLUICE_TASK',
  'SLUICE_HYPERPARAMETERS',
];

/**
 * A user job as a pipeline names it: the `code` folder (a path on the local backend; an uploaded
 * code asset on Azure ML, a workspace or volume path on Databricks), the `command` run in that
 * folder, and its time limit. The command is split into words by Sluice, never by a shell.
 */
export const userJobSpecSchema = z
  .object({
    contract: z.literal(JOB_CONTRACT_VERSION).default(JOB_CONTRACT_VERSION),
    code: z.string().min(1).max(1024),
    command: commandLineSchema,
    /** Classification or regression; by default from the target's type (category, string, boolean → classification). */
    task: z.enum(['classification', 'regression']).optional(),
    hyperparameters: userHyperparametersSchema.default({}),
    timeLimitSeconds: timeLimitSecondsSchema,
  })
  .strict();
export type UserJobSpec = z.infer<typeof userJobSpecSchema>;
export type UserJobSpecInput = z.input<typeof userJobSpecSchema>;

/**
 * `job.json` in a job folder: what `sluice job test` runs when no `--command` is given. The same
 * fields as the job spec, without `code` (it is the folder the file is in).
 */
export const jobFileSchema = userJobSpecSchema.omit({ code: true });
export type JobFile = z.infer<typeof jobFileSchema>;
