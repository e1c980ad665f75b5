import { NonRetriableError } from '../../errors';
import { SCORE_COMMAND_VARIABLE_NAMES, SLUICE_VARIABLE_NAMES } from '../../contracts/job';

/**
 * Sluice's launcher for a Databricks `spark_python_task` on an existing cluster or serverless
 * compute (docs/training.md, "Azure Databricks"). Neither compute takes per-run environment
 * variables (a new job cluster takes them as `spark_env_vars`), so there Sluice stages this small
 * Python file (standard library only) read-only beside the job's data and runs it as the task's
 * `python_file`. Its parameters carry the variables and the job's own file:
 *
 *     sluice_launch.py --env NAME=VALUE ... --file <the job's file> -- <the job's arguments>
 *
 * It sets the variables in `os.environ`, makes `sys.argv` what the job's file would have seen as
 * the python_file itself (`[file, ...arguments]`), puts the file's folder first on `sys.path`,
 * changes to that folder, and runs the file with `runpy` as `__main__` in the same process: the
 * job's exit status, exceptions and traceback are its own. So the same `SLUICE_*` variables (and
 * the MLflow run link, mlflowEnv.ts) reach the code on every compute.
 *
 * The job's file is a local path on the driver (`/Workspace/…`, `/Volumes/…`, `/dbfs/…`), or
 * `dbfs:/…` (read through the `/dbfs` mount when there is one), or another URI (`abfss://…`, a
 * staged host code folder under an ABFS job root), which it copies to a local folder first with
 * `dbutils.fs.cp`, as Databricks copies a python_file from cloud storage. Exit status 2 (with a
 * line naming the problem) when the launcher itself is called wrongly or cannot read the file.
 *
 * The parameters are part of the run's definition, which anyone who can see the run can read, so
 * no credential may go this way ({@link assertNoCredentials}).
 */
export const LAUNCHER_FILE = 'launcher/sluice_launch.py';

export const LAUNCHER_SOURCE = String.raw`"""Sluice's launcher for a Databricks spark_python_task on an existing cluster or serverless compute.

Written by Sluice (lib/training/backends/databricksLauncher.ts), standard library only. Those
computes take no per-run environment variables, so Sluice runs this file instead of the job's own:

    sluice_launch.py [--env NAME=VALUE]... --file PATH -- [ARG]...

It sets each NAME=VALUE in os.environ (the sluice.job/v1 SLUICE_* values and the MLflow run link,
never a credential), sets sys.argv to [PATH, ARG...], puts PATH's folder first on sys.path, changes
to that folder and runs PATH as __main__ in this process. The variables reach the job's code and
the processes it starts, not Spark executors. PATH is a local path (/Workspace, /Volumes, /dbfs),
dbfs:/... (read through /dbfs when mounted) or another URI, copied to a local folder with dbutils.
Exit status: the job's own; 2 when this launcher is called wrongly or cannot read PATH.
"""
import os
import re
import runpy
import sys
import tempfile

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_USAGE = "usage: sluice_launch.py [--env NAME=VALUE]... --file PATH -- [ARG]..."


def _fail(message):
    sys.stderr.write("sluice launcher: %s\n" % message)
    sys.stderr.flush()
    sys.exit(2)


def _parse(argv):
    env, path, i = {}, None, 0
    while i < len(argv):
        option = argv[i]
        if option == "--":
            if path is None:
                _fail("--file PATH is missing; " + _USAGE)
            return env, path, argv[i + 1 :]
        if option not in ("--env", "--file"):
            _fail("unknown option %r; %s" % (option, _USAGE))
        if i + 1 >= len(argv):
            _fail("%s needs a value; %s" % (option, _USAGE))
        value = argv[i + 1]
        if option == "--file":
            path = value
        else:
            name, equals, text = value.partition("=")
            if not equals or not _NAME.match(name):
                _fail("--env takes NAME=VALUE, not %r" % value)
            env[name] = text
        i += 2
    _fail("no -- before the job's arguments; " + _USAGE)


def _dbutils():
    try:
        from databricks.sdk.runtime import dbutils  # Databricks Runtime 13+ and serverless

        return dbutils
    except ImportError:
        pass
    try:
        from pyspark.dbutils import DBUtils
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return DBUtils(SparkSession.builder.getOrCreate())


def _fetch(uri):
    dbutils = _dbutils()
    if dbutils is None:
        _fail("cannot read %s: it is not a local path and dbutils is not available here" % uri)
    name = uri.rstrip("/").rsplit("/", 1)[-1] or "main.py"
    target = os.path.join(tempfile.mkdtemp(prefix="sluice-job-"), name)
    try:
        dbutils.fs.cp(uri, "file:" + target)
    except Exception as err:
        _fail("cannot copy %s to this machine: %s" % (uri, err))
    if not os.path.isfile(target):
        _fail("cannot copy %s to this machine: nothing arrived" % uri)
    return target


def _local(path):
    if path.startswith("dbfs:/"):
        mounted = "/dbfs/" + path[len("dbfs:/") :].lstrip("/")
        if os.path.isfile(mounted):
            return mounted
    if _URI.match(path):
        return _fetch(path)
    if not os.path.isfile(path):
        _fail("the job's file %s does not exist" % path)
    return path


def main():
    env, path, args = _parse(sys.argv[1:])
    path = os.path.abspath(_local(path))
    folder = os.path.dirname(path)
    os.environ.update(env)
    sys.argv = [path] + list(args)
    sys.path.insert(0, folder)
    os.chdir(folder)
    runpy.run_path(path, run_name="__main__")


main()
`;

/**
 * The only names a run's definition may carry: the MLflow link (mlflowEnv.ts, never its
 * credentials), the job contract's SLUICE_* variables and a score command's. An allow-list, not a
 * pattern for what looks like a credential: a name nobody thought of (a token under another name)
 * is refused too.
 */
const DEFINITION_VARIABLES: ReadonlySet<string> = new Set([
  'MLFLOW_RUN_ID',
  'MLFLOW_EXPERIMENT_ID',
  'MLFLOW_TRACKING_URI',
  ...SLUICE_VARIABLE_NAMES,
  ...SCORE_COMMAND_VARIABLE_NAMES,
]);

/**
 * Refuses any variable outside {@link DEFINITION_VARIABLES} before it goes into a run's definition
 * (`spark_env_vars`, the launcher's parameters, widgets, named parameters): anyone who can see the
 * run reads them, so the MLflow link gives a Databricks job the run, the experiment and the
 * tracking URI only (mlflowEnv.ts), and Sluice its SLUICE_* values.
 */
export function assertNoCredentials(env: Record<string, string>): void {
  const bad = Object.keys(env).filter((k) => !DEFINITION_VARIABLES.has(k));
  if (bad.length > 0)
    throw new NonRetriableError(
      'databricks_credential_refused',
      `${bad.join(', ')} would be readable by anyone who can see the Databricks run; a run's definition carries only MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID, MLFLOW_TRACKING_URI and Sluice's SLUICE_* variables, no credential`,
    );
}

/**
 * The launcher's parameters: every variable as `--env NAME=VALUE` (sorted by name, so the same job
 * always gets the same definition), the job's file, then `--` and the job's own arguments.
 */
export function launcherParameters(
  env: Record<string, string>,
  file: string,
  args: readonly string[],
): string[] {
  const names = Object.keys(env).sort();
  for (const name of names)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new NonRetriableError(
        'databricks_variable_invalid',
        `${JSON.stringify(name)} is not a valid environment variable name`,
      );
  assertNoCredentials(env);
  const out: string[] = [];
  for (const name of names) out.push('--env', `${name}=${env[name]!}`);
  out.push('--file', file, '--', ...args);
  return out;
}
