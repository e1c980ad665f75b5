import { NonRetriableError } from '../../errors';
import type { SluiceVariable } from '../../contracts/job';
import { SLUICE_VARIABLE_NAMES } from '../../contracts/job';
import type { CustomTrainingSpec } from '../../contracts/trainingSpec';
import { commandArgv, parseCommand } from '../userJob/command';

/**
 * The Jobs API 2.2 `runs/submit` body of a user job (pure: no I/O), following the documented field
 * names: one task (`task_key` "train") of the kind `databricks.task` names, on the compute its
 * settings name, with `idempotency_token` = the job id so a retried submit never starts a second
 * run, the job's time limit as the task's `timeout_seconds`, and the webhook notification
 * destination (when configured) on success and on failure.
 *
 * How the `sluice.job/v1` values reach the code:
 * - spark_python: `python_file` = `code`/<the command's first word> (a leading `python`/`python3`
 *   word is dropped, so the command that runs locally runs here too; an absolute first word is
 *   used as is), `parameters` = the other words with `${SLUICE_*}` expanded; on a new job cluster
 *   also every value as an environment variable (`spark_env_vars`). An existing cluster or
 *   serverless compute cannot take per-run environment variables, so there the command must pass
 *   at least `${SLUICE_OUTPUT}` as a parameter.
 * - notebook: `notebook_path` = `code`, every value as a base parameter (a widget of that name).
 * - python_wheel: `package_name`/`entry_point` from the settings, every value as a named parameter
 *   (`--SLUICE_TRAIN=...`).
 */

export const TASK_KEY = 'train';
export const ENVIRONMENT_KEY = 'sluice';
export const DEFAULT_ENVIRONMENT_VERSION = '2';

export interface RunSubmitInput {
  jobId: string;
  spec: CustomTrainingSpec;
  /** Every SLUICE_* value, with the paths as the Databricks job sees them. */
  variables: Record<SluiceVariable, string> | Record<string, string>;
  /**
   * A score job (the pipeline's `score` command over a model, lib/training/backends/databricks.ts
   * `score`): the command run instead of `spec.command`, its placeholder names, and the variable
   * that must reach the code as a parameter where no environment variables can be set.
   */
  scoring?: { command: string; known: readonly string[]; outputVariable: string };
  /** A notification destination id (an HTTP webhook to Sluice's databricks-events function). */
  webhookDestinationId?: string;
  /**
   * Environment variables only, never parameters (MLFLOW_RUN_ID and the other MLflow link
   * variables, lib/training/backends/mlflowEnv.ts): set on a new job cluster (`spark_env_vars`);
   * an existing cluster or serverless compute takes no per-run environment, so there they are not set.
   */
  env?: Record<string, string>;
}

const PYTHON = /^(?:.*\/)?python(?:\d+(?:\.\d+)*)?$/;

/** A dependency as a cluster task library. */
function library(dep: string): Record<string, unknown> {
  if (/\.whl$/i.test(dep)) return { whl: dep };
  if (/(^|\/)[^/]*requirements[^/]*\.txt$/i.test(dep)) return { requirements: dep };
  return { pypi: { package: dep } };
}

const joinPath = (dir: string, file: string) =>
  /^[a-z][a-z0-9+.-]*:/i.test(file) || file.startsWith('/') ? file : `${dir.replace(/\/+$/, '')}/${file}`;

function sparkPythonTask(
  spec: CustomTrainingSpec,
  variables: Record<string, string>,
  envVars: boolean,
  scoring?: RunSubmitInput['scoring'],
) {
  let words: string[] = [];
  const command = scoring ? scoring.command : spec.command;
  if (command !== undefined) {
    words = scoring ? commandArgv(command, variables, scoring.known) : commandArgv(command, variables);
    if (words.length > 1 && PYTHON.test(words[0]!)) words = words.slice(1);
    if (!envVars) {
      const used = new Set<string>(
        parseCommand<string>(command, scoring?.known ?? (SLUICE_VARIABLE_NAMES as readonly string[])).flatMap(
          (w) => w.flatMap((p) => ('variable' in p ? [p.variable] : [])),
        ),
      );
      if (!used.has(scoring?.outputVariable ?? 'SLUICE_OUTPUT')) {
        throw new NonRetriableError(
          'databricks_command_without_output',
          'on an existing cluster or serverless compute a spark_python job gets its SLUICE_* values only as parameters: ' +
            'name them in the command, at least ${SLUICE_OUTPUT} (e.g. "train.py --train ${SLUICE_TRAIN} --output ${SLUICE_OUTPUT}"), or use databricks.newCluster',
        );
      }
    }
  } else if (!envVars) {
    throw new NonRetriableError(
      'databricks_command_without_output',
      'on an existing cluster or serverless compute a spark_python job needs a command naming ${SLUICE_OUTPUT} as a parameter',
    );
  }
  const [first, ...rest] = words;
  return {
    spark_python_task: {
      python_file: first === undefined ? spec.code : joinPath(spec.code, first),
      parameters: rest,
    },
  };
}

export function runSubmitBody(input: RunSubmitInput): Record<string, unknown> {
  const { jobId, spec, variables } = input;
  const settings = spec.databricks ?? { task: 'spark_python' as const };
  const kind = settings.task;
  const deps = settings.dependencies ?? [];
  const serverless = !settings.existingClusterId && !settings.newCluster;

  if (kind !== 'spark_python' && spec.command !== undefined) {
    throw new NonRetriableError(
      'databricks_command_unused',
      `a ${kind} task takes no command: its SLUICE_* values arrive as ${kind === 'notebook' ? 'widgets (base parameters)' : 'named parameters'}; remove "command"`,
    );
  }
  if (kind === 'notebook' && serverless && deps.length > 0) {
    throw new NonRetriableError(
      'databricks_dependencies_unsupported',
      "a notebook on serverless compute installs its packages itself (%pip or the notebook's environment); remove databricks.dependencies",
    );
  }

  let task: Record<string, unknown>;
  if (kind === 'spark_python') {
    task = sparkPythonTask(spec, variables, Boolean(settings.newCluster), input.scoring);
  } else if (kind === 'notebook') {
    task = { notebook_task: { notebook_path: spec.code, base_parameters: { ...variables } } };
  } else {
    task = {
      python_wheel_task: {
        package_name: settings.packageName,
        entry_point: settings.entryPoint,
        named_parameters: { ...variables },
      },
    };
  }

  let compute: Record<string, unknown>;
  let environments: unknown[] | undefined;
  if (settings.newCluster) {
    const cluster = settings.newCluster;
    const own =
      typeof cluster.spark_env_vars === 'object' && cluster.spark_env_vars !== null
        ? (cluster.spark_env_vars as Record<string, unknown>)
        : {};
    compute = { new_cluster: { ...cluster, spark_env_vars: { ...own, ...input.env, ...variables } } };
  } else if (settings.existingClusterId) {
    compute = { existing_cluster_id: settings.existingClusterId };
  } else if (kind === 'notebook') {
    compute = {};
  } else {
    compute = { environment_key: ENVIRONMENT_KEY };
    environments = [
      {
        environment_key: ENVIRONMENT_KEY,
        spec: {
          environment_version: settings.environmentVersion ?? DEFAULT_ENVIRONMENT_VERSION,
          ...(deps.length ? { dependencies: deps } : {}),
        },
      },
    ];
  }
  const libraries = !serverless && deps.length ? { libraries: deps.map(library) } : {};

  const destination = input.webhookDestinationId ? [{ id: input.webhookDestinationId }] : undefined;
  return {
    run_name: `sluice ${jobId}`,
    idempotency_token: jobId,
    tasks: [
      {
        task_key: TASK_KEY,
        ...task,
        ...compute,
        ...libraries,
        timeout_seconds: spec.timeLimitSeconds,
      },
    ],
    ...(environments ? { environments } : {}),
    queue: { enabled: true },
    ...(destination ? { webhook_notifications: { on_success: destination, on_failure: destination } } : {}),
  };
}
