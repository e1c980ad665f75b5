/**
 * Sluice's launcher for spark_python runs on an existing cluster or serverless compute
 * (lib/training/backends/databricksLauncher.ts), run for real with /usr/bin/python3 as Databricks
 * runs a python_file: the variables it is given are in the job's environment, the job sees the argv
 * it would have seen as the python_file itself, runs as __main__ from its own folder (a sibling
 * module imports), its exit status and traceback are its own, a file behind a URI is copied with
 * dbutils first, and a launcher called wrongly says why with status 2. Then its parameters as the
 * backend builds them: sorted, and never a credential.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  LAUNCHER_FILE,
  LAUNCHER_SOURCE,
  assertNoCredentials,
  launcherParameters,
} from '../../../lib/training/backends/databricksLauncher';
import { SCORE_COMMAND_VARIABLE_NAMES, SLUICE_VARIABLE_NAMES } from '../../../lib/contracts/job';

const PYTHON = '/usr/bin/python3';

let dir: string;
let launcher: string;
let job: string;

interface Seen {
  name: string;
  file: string;
  argv: string[];
  cwd: string;
  path0: string;
  env: Record<string, string>;
  helper: string | null;
}

/** The job: writes what it sees to seen.json beside SLUICE_OUTPUT's folder, then exits as asked. */
const SHOW = `import json, os, sys
# A sibling module, where the job's folder has one (imported from the job's own folder).
helper = __import__("helper").VALUE if os.path.exists("helper.py") else None
seen = {
    "name": __name__,
    "file": __file__,
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "env": {k: v for k, v in os.environ.items() if k.startswith(("SLUICE_", "MLFLOW_"))},
    "helper": helper,
}
with open(os.path.join(os.environ["SLUICE_OUTPUT"], "seen.json"), "w", encoding="utf-8") as f:
    json.dump(seen, f)
print("trained", flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "--exit":
    sys.exit(int(sys.argv[2]))
if len(sys.argv) > 1 and sys.argv[1] == "--raise":
    raise ValueError("the training data has no rows for class x")
`;

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      PYTHON,
      [launcher, ...args],
      { cwd: path.dirname(launcher), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-launcher-'));
  launcher = path.join(dir, 'jobs', 'j1', ...LAUNCHER_FILE.split('/'));
  await mkdir(path.dirname(launcher), { recursive: true });
  await writeFile(launcher, LAUNCHER_SOURCE);
  job = path.join(dir, 'Workspace', 'churn');
  await mkdir(job, { recursive: true });
  await writeFile(path.join(job, 'train.py'), SHOW);
  await writeFile(path.join(job, 'helper.py'), 'VALUE = "from the job folder"\n');
  await mkdir(path.join(dir, 'out'), { recursive: true });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const seen = async (): Promise<Seen> =>
  JSON.parse(await readFile(path.join(dir, 'out', 'seen.json'), 'utf8')) as Seen;

describe('the launcher, run with /usr/bin/python3', () => {
  it('sets the variables, gives the job its own argv, folder and __main__, and exits 0', async () => {
    await rm(path.join(dir, 'out', 'seen.json'), { force: true });
    const env = {
      SLUICE_OUTPUT: path.join(dir, 'out'),
      SLUICE_TRAIN: '/Volumes/main/sluice/jobs/j1/data/train.csv',
      SLUICE_FEATURES: '["température","a=b","x y"]',
      SLUICE_HYPERPARAMETERS: '{"C": 1, "note": "line one\nline two"}',
      MLFLOW_RUN_ID: 'abc123',
      MLFLOW_EXPERIMENT_ID: '7',
      MLFLOW_TRACKING_URI: 'databricks',
      SLUICE_VALIDATION: '',
    };
    const args = [
      '--train',
      '/Volumes/main/sluice/jobs/j1/data/train.csv',
      'two words',
      '--',
      '--env',
      'X=1',
    ];
    const file = path.join(job, 'train.py');
    const r = await run(launcherParameters(env, file, args), { SLUICE_TRAIN: 'the cluster’s own value' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('trained\n');
    const s = await seen();
    expect(s.env).toEqual(env);
    expect(s.argv).toEqual([file, ...args]);
    expect(s.name).toBe('__main__');
    expect(s.file).toBe(file);
    expect(s.cwd).toBe(job);
    expect(s.path0).toBe(job);
    expect(s.helper).toBe('from the job folder');
  });

  it("passes the job's exit status through, and an exception's traceback with status 1", async () => {
    const env = { SLUICE_OUTPUT: path.join(dir, 'out') };
    const file = path.join(job, 'train.py');
    const exited = await run(launcherParameters(env, file, ['--exit', '3']));
    expect(exited.code).toBe(3);
    expect(exited.stdout).toBe('trained\n');
    const raised = await run(launcherParameters(env, file, ['--raise']));
    expect(raised.code).toBe(1);
    expect(raised.stderr).toContain('Traceback (most recent call last)');
    expect(raised.stderr).toContain(`File "${file}"`);
    expect(raised.stderr.trimEnd().split('\n').at(-1)).toBe(
      'ValueError: the training data has no rows for class x',
    );
  });

  it('copies a file behind a URI to a local folder with dbutils, and says so when there is no dbutils', async () => {
    // dbutils as Databricks Runtime provides it (databricks.sdk.runtime), over a local folder
    // that stands for the jobs container over ABFS.
    const stub = path.join(dir, 'stub');
    const bucket = path.join(dir, 'abfs');
    await mkdir(path.join(stub, 'databricks', 'sdk'), { recursive: true });
    await mkdir(path.join(bucket, 'j1', 'code'), { recursive: true });
    await writeFile(path.join(bucket, 'j1', 'code', 'train.py'), SHOW);
    await writeFile(path.join(stub, 'databricks', '__init__.py'), '');
    await writeFile(path.join(stub, 'databricks', 'sdk', '__init__.py'), '');
    await writeFile(
      path.join(stub, 'databricks', 'sdk', 'runtime.py'),
      [
        'import shutil',
        `ROOT = "abfss://jobs@stsluice.dfs.core.windows.net/"`,
        'class _Fs:',
        '    def cp(self, source, target, recurse=False):',
        '        assert source.startswith(ROOT) and target.startswith("file:"), (source, target)',
        `        shutil.copyfile(${JSON.stringify(bucket)} + "/" + source[len(ROOT):], target[len("file:"):])`,
        '        return True',
        'class _DBUtils:',
        '    fs = _Fs()',
        'dbutils = _DBUtils()',
        '',
      ].join('\n'),
    );
    await rm(path.join(dir, 'out', 'seen.json'), { force: true });
    const uri = 'abfss://jobs@stsluice.dfs.core.windows.net/j1/code/train.py';
    const env = { SLUICE_OUTPUT: path.join(dir, 'out'), MLFLOW_RUN_ID: 'r1' };
    const r = await run(launcherParameters(env, uri, ['a']), { PYTHONPATH: stub });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = await seen();
    expect(path.basename(s.argv[0]!)).toBe('train.py');
    expect(s.argv[0]).not.toContain(bucket);
    expect(s.argv.slice(1)).toEqual(['a']);
    // Only the file is copied, as Databricks copies a python_file from cloud storage.
    expect(s.helper).toBeNull();
    expect(s.env).toEqual(env);

    const without = await run(launcherParameters(env, uri, []));
    expect(without.code).toBe(2);
    expect(without.stderr).toBe(
      `sluice launcher: cannot read ${uri}: it is not a local path and dbutils is not available here\n`,
    );
  });

  it('called wrongly, or for a file that is not there: status 2 and a line naming the problem', async () => {
    const missing = await run(['--env', 'A=1', '--file', path.join(job, 'nope.py'), '--']);
    expect(missing).toMatchObject({
      code: 2,
      stderr: `sluice launcher: the job's file ${path.join(job, 'nope.py')} does not exist\n`,
    });
    const cases: [string[], string][] = [
      [['--env', 'A=1', '--'], '--file PATH is missing'],
      [['--env', 'not a name=1', '--file', 'x.py', '--'], "--env takes NAME=VALUE, not 'not a name=1'"],
      [['--env', 'NOEQUALS', '--file', 'x.py', '--'], "--env takes NAME=VALUE, not 'NOEQUALS'"],
      [['--file', 'x.py'], "no -- before the job's arguments"],
      [['--file'], '--file needs a value'],
      [['train.py', '--'], "unknown option 'train.py'"],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        new RegExp(`^sluice launcher: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      );
    }
  });
});

describe('the launcher’s parameters', () => {
  it('every variable as --env NAME=VALUE, sorted, then the file, -- and the job’s arguments', () => {
    expect(
      launcherParameters({ SLUICE_TASK: '2', MLFLOW_RUN_ID: 'r', SLUICE_SEED: 'x=y' }, '/W/t.py', [
        '--o',
        'v',
      ]),
    ).toEqual([
      '--env',
      'MLFLOW_RUN_ID=r',
      '--env',
      'SLUICE_SEED=x=y',
      '--env',
      'SLUICE_TASK=2',
      '--file',
      '/W/t.py',
      '--',
      '--o',
      'v',
    ]);
    expect(launcherParameters({}, 'dbfs:/t.py', [])).toEqual(['--file', 'dbfs:/t.py', '--']);
  });

  it('refuses a credential and a name that cannot be a variable', () => {
    for (const name of [
      'MLFLOW_TRACKING_TOKEN',
      'MLFLOW_TRACKING_PASSWORD',
      'MLFLOW_TRACKING_USERNAME',
      'DATABRICKS_TOKEN',
      'AZURE_CLIENT_SECRET',
      'STORAGE_ACCOUNT_KEY',
    ]) {
      expect(() => launcherParameters({ [name]: 'x' }, '/W/t.py', [])).toThrow(
        expect.objectContaining({
          code: 'databricks_credential_refused',
          message: expect.stringContaining(name),
        }),
      );
    }
    expect(() => assertNoCredentials({ MLFLOW_RUN_ID: 'r', SLUICE_OUTPUT: '/o' })).not.toThrow();
    expect(() => launcherParameters({ 'A-B': 'x' }, '/W/t.py', [])).toThrow(
      expect.objectContaining({ code: 'databricks_variable_invalid' }),
    );
  });

  it('lets through only the MLflow link, the contract’s SLUICE_* names and a score command’s', () => {
    const allowed = [
      'MLFLOW_RUN_ID',
      'MLFLOW_EXPERIMENT_ID',
      'MLFLOW_TRACKING_URI',
      ...SLUICE_VARIABLE_NAMES,
      ...SCORE_COMMAND_VARIABLE_NAMES,
    ];
    expect(() => assertNoCredentials(Object.fromEntries(allowed.map((n) => [n, 'v'])))).not.toThrow();
    // Credentials under names no pattern would catch, and names merely shaped like Sluice's.
    for (const name of [
      'DATABRICKS_PAT',
      'MLFLOW_TRACKING_AUTH',
      'AZURE_STORAGE_CONNECTION_STRING',
      'ARM_CLIENT_CERTIFICATE',
      'SLUICE_MLFLOW_ENV',
      'SLUICE_A',
      'PYTHONUNBUFFERED',
      'mlflow_run_id',
    ]) {
      for (const call of [
        () => assertNoCredentials({ MLFLOW_RUN_ID: 'r', [name]: 'x' }),
        () => launcherParameters({ SLUICE_OUTPUT: '/o', [name]: 'x' }, '/W/t.py', []),
      ])
        expect(call).toThrow(
          expect.objectContaining({
            code: 'databricks_credential_refused',
            message: expect.stringMatching(new RegExp(`^${name} would be readable`)),
          }),
        );
    }
  });
});
