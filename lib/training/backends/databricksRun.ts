import { NonRetriableError } from '../../errors';
import type { SluiceVariable } from '../../contracts/job';
import { SLUICE_VARIABLE_NAMES } from '../../contracts/job';
import type { CustomTrainingSpec } from '../../contracts/trainingSpec';
import { commandArgv, parseCommand } from '../userJob/command';
import { assertNoCredentials, launcherParameters } from './databricksLauncher';

/**
 * The Jobs API 2.2 `runs/submit` body of a user job (pure: no I/O), following the documented field
 * names: one task (`task_key` "train") of the kind `databricks.task` names, on the compute its
 * settings name, with `idempotency_token` = the job id so a retried submit never starts a second
 * run, the job's time limit as the task's `timeout_seconds`, and the webhook notification
 * destination (when configured) on success and on failure.
 *
 * How the `sluice.job/v1` values reach the code:
 * - spark_python: the job's file is `code`/<the command's first word> (a leading `python`/`python3`
 *   word is dropped, so the command that runs locally runs here too; an absolute first word is
 *   used as is), its arguments the other words with `${SLUICE_*}` expanded. On a new job cluster
 *   that file is the `python_file`, the arguments its `parameters`, and every value (with the
 *   MLflow link, `env`) an environment variable (`spark_env_vars`). An existing cluster or
 *   serverless compute takes no per-run environment variables, so there the `python_file` is
 *   Sluice's launcher (`launcher`, databricksLauncher.ts), which sets the same variables and runs
 *   the job's file with its arguments: the code sees the same environment on every compute.
 *   Without a launcher (a caller that staged none) such a run gets the values only as the
 *   command's parameters, so the command must name at least `${SLUICE_OUTPUT}`.
 * - notebook: `notebook_path` = `code`, every value as a base parameter (a widget of that name),
 *   and the MLflow link's variables too (a notebook copies them to `os.environ` in its first cell).
 * - python_wheel: `package_name`/`entry_point` from the settings, every value and the MLflow link's
 *   variables as named parameters (`--SLUICE_TRAIN=...`).
 *
 * Never a credential: `env` names that look like one are refused (`assertNoCredentials`).
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
   * The MLflow link's variables (MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID, MLFLOW_TRACKING_URI;
   * lib/training/backends/mlflowEnv.ts), never a credential: `spark_env_vars` of a new job
   * cluster, the launcher's `--env` on an existing cluster or serverless compute, widgets of a
   * notebook, named parameters of a wheel.
   */
  env?: Record<string, string>;
  /**
   * Where the caller staged Sluice's launcher (databricksLauncher.ts), as the run sees it: the
   * `python_file` of a spark_python task on an existing cluster or serverless compute
   * ({@link usesLauncher}).
   */
  launcher?: string;
}

/** Whether a spec's run needs the launcher: a spark_python task on compute without per-run environment. */
export const usesLauncher = (spec: CustomTrainingSpec): boolean =>
  (spec.databricks?.task ?? 'spark_python') === 'spark_python' && !spec.databricks?.newCluster;

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
  launcher?: { path: string; env: Record<string, string> },
) {
  let words: string[] = [];
  const command = scoring ? scoring.command : spec.command;
  if (command !== undefined) {
    words = scoring ? commandArgv(command, variables, scoring.known) : commandArgv(command, variables);
    if (words.length > 1 && PYTHON.test(words[0]!)) words = words.slice(1);
    if (!envVars && !launcher) {
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
  } else if (!envVars && !launcher) {
    throw new NonRetriableError(
      'databricks_command_without_output',
      'on an existing cluster or serverless compute a spark_python job needs a command naming ${SLUICE_OUTPUT} as a parameter',
    );
  }
  const [first, ...rest] = words;
  const file = first === undefined ? spec.code : joinPath(spec.code, first);
  if (launcher && !envVars) {
    // The job's own values win over anything else of the same name, as in spark_env_vars.
    const env = { ...launcher.env, ...variables };
    return {
      spark_python_task: { python_file: launcher.path, parameters: launcherParameters(env, file, rest) },
    };
  }
  return { spark_python_task: { python_file: file, parameters: rest } };
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

  const env = input.env ?? {};
  assertNoCredentials(env);
  let task: Record<string, unknown>;
  if (kind === 'spark_python') {
    task = sparkPythonTask(
      spec,
      variables,
      Boolean(settings.newCluster),
      input.scoring,
      input.launcher ? { path: input.launcher, env } : undefined,
    );
  } else if (kind === 'notebook') {
    task = { notebook_task: { notebook_path: spec.code, base_parameters: { ...env, ...variables } } };
  } else {
    task = {
      python_wheel_task: {
        package_name: settings.packageName,
        entry_point: settings.entryPoint,
        // A new job cluster already has the MLflow link in spark_env_vars; elsewhere it can only come
        // as named parameters (an argparse entry point then needs parse_known_args: docs/training.md).
        named_parameters: settings.newCluster ? { ...variables } : { ...env, ...variables },
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
    compute = { new_cluster: { ...cluster, spark_env_vars: { ...own, ...env, ...variables } } };
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
