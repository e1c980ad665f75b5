/**
 * The databricks backend's pure parts: the runs/submit body for each task kind and compute, the
 * run-state mapping (both the newer `status` and the older `state`), 64-bit ids, the job root
 * setting, the settings' refinements, and the backend's construction from the app settings.
 */
import { ArtifactStore } from '../../../lib/storage/blob';
import { loadConfig } from '../../../lib/config';
import type { SluiceVariable } from '../../../lib/contracts/job';
import { SLUICE_VARIABLE_NAMES } from '../../../lib/contracts/job';
import type { CustomTrainingSpec } from '../../../lib/contracts/trainingSpec';
import { trainingSpecSchema } from '../../../lib/contracts/trainingSpec';
import { backendsFromConfig } from '../../../lib/training/backends/fromConfig';
import {
  abfssJobRoot,
  defaultOutputRoot,
  DatabricksTrainingBackend,
  parseJobRoot,
  parseOutputRoot,
} from '../../../lib/training/backends/databricks';
import {
  DatabricksClient,
  mapRunState,
  parseDatabricksJson,
} from '../../../lib/training/backends/databricksApi';
import { runSubmitBody, usesLauncher } from '../../../lib/training/backends/databricksRun';

const variables = Object.fromEntries(
  SLUICE_VARIABLE_NAMES.map((n) => [
    n,
    n === 'SLUICE_HYPERPARAMETERS' ? '{"a":1}' : `/Volumes/c/s/v/j1/${n}`,
  ]),
) as Record<SluiceVariable, string>;

const spec = (extra: Record<string, unknown>): CustomTrainingSpec =>
  trainingSpecSchema.parse({
    algorithm: 'custom',
    backend: 'databricks',
    target: 'y',
    features: ['a'],
    code: '/Workspace/Users/me/job',
    timeLimitSeconds: 900,
    ...extra,
  }) as CustomTrainingSpec;

const task = (body: Record<string, unknown>) => (body.tasks as Record<string, unknown>[])[0]!;

describe('runs/submit body', () => {
  it('spark_python on serverless: the command word is the file, the rest its parameters, one environment', () => {
    const body = runSubmitBody({
      jobId: 'j1',
      spec: spec({
        command: 'python3 train.py --train ${SLUICE_TRAIN} --out "${SLUICE_OUTPUT}" --lit \'${x}\'',
        databricks: { environmentVersion: '3', dependencies: ['scikit-learn==1.5.2', 'onnx'] },
      }),
      variables,
    });
    expect(body).toEqual({
      run_name: 'sluice j1',
      idempotency_token: 'j1',
      tasks: [
        {
          task_key: 'train',
          spark_python_task: {
            python_file: '/Workspace/Users/me/job/train.py',
            parameters: [
              '--train',
              variables.SLUICE_TRAIN,
              '--out',
              variables.SLUICE_OUTPUT,
              '--lit',
              '${x}',
            ],
          },
          environment_key: 'sluice',
          timeout_seconds: 900,
        },
      ],
      environments: [
        {
          environment_key: 'sluice',
          spec: { environment_version: '3', dependencies: ['scikit-learn==1.5.2', 'onnx'] },
        },
      ],
      queue: { enabled: true },
    });
  });

  it('spark_python on an existing cluster with libraries; an absolute file is used as is', () => {
    const body = runSubmitBody({
      jobId: 'j1',
      spec: spec({
        command: '/Volumes/c/s/code/train.py ${SLUICE_OUTPUT}',
        databricks: {
          existingClusterId: '0101-abc',
          dependencies: [
            '/Volumes/c/s/w/pkg-1.0-py3-none-any.whl',
            '/Workspace/me/requirements.txt',
            'lightgbm',
          ],
        },
      }),
      variables,
      webhookDestinationId: 'd-1',
    });
    expect(task(body)).toEqual({
      task_key: 'train',
      spark_python_task: { python_file: '/Volumes/c/s/code/train.py', parameters: [variables.SLUICE_OUTPUT] },
      existing_cluster_id: '0101-abc',
      libraries: [
        { whl: '/Volumes/c/s/w/pkg-1.0-py3-none-any.whl' },
        { requirements: '/Workspace/me/requirements.txt' },
        { pypi: { package: 'lightgbm' } },
      ],
      timeout_seconds: 900,
    });
    expect(body.webhook_notifications).toEqual({ on_success: [{ id: 'd-1' }], on_failure: [{ id: 'd-1' }] });
    expect(body.environments).toBeUndefined();
  });

  it('spark_python on a new cluster: every value also in spark_env_vars, the cluster’s own kept', () => {
    const body = runSubmitBody({
      jobId: 'j1',
      spec: spec({
        databricks: { newCluster: { spark_version: '15.4.x-scala2.12', spark_env_vars: { KEEP: '1' } } },
      }),
      variables,
    });
    expect(task(body).spark_python_task).toEqual({ python_file: '/Workspace/Users/me/job', parameters: [] });
    expect(task(body).new_cluster).toEqual({
      spark_version: '15.4.x-scala2.12',
      spark_env_vars: { KEEP: '1', ...variables },
    });
  });

  it('without environment variables the command must pass ${SLUICE_OUTPUT}', () => {
    for (const databricks of [{}, { existingClusterId: 'c' }]) {
      expect(() =>
        runSubmitBody({
          jobId: 'j1',
          spec: spec({ command: 'train.py ${SLUICE_TRAIN}', databricks }),
          variables,
        }),
      ).toThrow(expect.objectContaining({ code: 'databricks_command_without_output' }));
      expect(() => runSubmitBody({ jobId: 'j1', spec: spec({ databricks }), variables })).toThrow(
        expect.objectContaining({ code: 'databricks_command_without_output' }),
      );
    }
  });

  it('spark_python on serverless or an existing cluster with the launcher: the same values as a new cluster’s environment, the job’s file and arguments behind it', () => {
    const launcher = '/Volumes/c/s/v/j1/launcher/sluice_launch.py';
    const env = { MLFLOW_RUN_ID: 'r1', MLFLOW_EXPERIMENT_ID: '7', MLFLOW_TRACKING_URI: 'databricks' };
    const expected = (args: string[]) => ({
      python_file: launcher,
      parameters: [
        ...Object.entries({ ...env, ...variables })
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .flatMap(([k, v]) => ['--env', `${k}=${v}`]),
        '--file',
        '/Workspace/Users/me/job/train.py',
        '--',
        ...args,
      ],
    });
    for (const databricks of [{}, { existingClusterId: '0101-abc' }]) {
      // No ${SLUICE_OUTPUT} needed: the command that runs on a new cluster runs here.
      const body = runSubmitBody({
        jobId: 'j1',
        spec: spec({ command: 'python3 train.py', databricks }),
        variables,
        env,
        launcher,
      });
      expect(task(body).spark_python_task).toEqual(expected([]));
      expect(task(body).new_cluster).toBeUndefined();
      const withArgs = runSubmitBody({
        jobId: 'j1',
        spec: spec({ command: 'train.py --train ${SLUICE_TRAIN} "two words"', databricks }),
        variables,
        launcher,
      });
      expect((task(withArgs).spark_python_task as { parameters: string[] }).parameters.slice(-5)).toEqual([
        '/Workspace/Users/me/job/train.py',
        '--',
        '--train',
        variables.SLUICE_TRAIN,
        'two words',
      ]);
    }
    // Without a command the code is the file.
    const bare = runSubmitBody({ jobId: 'j1', spec: spec({}), variables, launcher });
    expect((task(bare).spark_python_task as { parameters: string[] }).parameters.slice(-2)).toEqual([
      '/Workspace/Users/me/job',
      '--',
    ]);
    // A new cluster keeps spark_env_vars and the job's own file: no launcher there.
    const cluster = runSubmitBody({
      jobId: 'j1',
      spec: spec({ command: 'train.py', databricks: { newCluster: { spark_version: '15.4.x-scala2.12' } } }),
      variables,
      env,
      launcher,
    });
    expect(task(cluster).spark_python_task).toEqual({
      python_file: '/Workspace/Users/me/job/train.py',
      parameters: [],
    });
    expect(usesLauncher(spec({ databricks: { newCluster: {} } }))).toBe(false);
    expect(usesLauncher(spec({ databricks: { existingClusterId: 'c' } }))).toBe(true);
    expect(usesLauncher(spec({}))).toBe(true);
    expect(usesLauncher(spec({ databricks: { task: 'notebook' } }))).toBe(false);
  });

  it('the MLflow link’s variables as widgets of a notebook and named parameters of a wheel, never a credential anywhere', () => {
    const env = { MLFLOW_RUN_ID: 'r1', MLFLOW_EXPERIMENT_ID: '7', MLFLOW_TRACKING_URI: 'databricks' };
    const notebook = runSubmitBody({
      jobId: 'j1',
      spec: spec({ databricks: { task: 'notebook' } }),
      variables,
      env,
    });
    expect(task(notebook).notebook_task).toEqual({
      notebook_path: '/Workspace/Users/me/job',
      base_parameters: { ...variables, ...env },
    });
    const wheel = runSubmitBody({
      jobId: 'j1',
      spec: spec({ databricks: { task: 'python_wheel', packageName: 'churn', entryPoint: 'train' } }),
      variables,
      env,
    });
    expect((task(wheel).python_wheel_task as { named_parameters: unknown }).named_parameters).toEqual({
      ...variables,
      ...env,
    });
    for (const databricks of [
      {},
      { existingClusterId: 'c' },
      { newCluster: { spark_version: '15.4.x-scala2.12' } },
      { task: 'notebook' },
    ]) {
      expect(() =>
        runSubmitBody({
          jobId: 'j1',
          spec: spec({ databricks }),
          variables,
          env: { ...env, MLFLOW_TRACKING_TOKEN: 'dapi-secret' },
          launcher: '/Volumes/c/s/v/j1/launcher/sluice_launch.py',
        }),
      ).toThrow(expect.objectContaining({ code: 'databricks_credential_refused' }));
    }
  });

  it('notebook: the values as base parameters; serverless needs no environment', () => {
    const body = runSubmitBody({ jobId: 'j1', spec: spec({ databricks: { task: 'notebook' } }), variables });
    expect(task(body)).toEqual({
      task_key: 'train',
      notebook_task: { notebook_path: '/Workspace/Users/me/job', base_parameters: variables },
      timeout_seconds: 900,
    });
    expect(body.environments).toBeUndefined();
    expect(() =>
      runSubmitBody({
        jobId: 'j1',
        spec: spec({ command: 'x.py', databricks: { task: 'notebook' } }),
        variables,
      }),
    ).toThrow(expect.objectContaining({ code: 'databricks_command_unused' }));
    expect(() =>
      runSubmitBody({
        jobId: 'j1',
        spec: spec({ databricks: { task: 'notebook', dependencies: ['onnx'] } }),
        variables,
      }),
    ).toThrow(expect.objectContaining({ code: 'databricks_dependencies_unsupported' }));
  });

  it('python_wheel: package and entry point, the values as named parameters, the wheel as a dependency', () => {
    const body = runSubmitBody({
      jobId: 'j1',
      spec: spec({
        databricks: {
          task: 'python_wheel',
          packageName: 'churn',
          entryPoint: 'train',
          dependencies: ['/Volumes/c/s/w/churn-1.0-py3-none-any.whl'],
        },
      }),
      variables,
    });
    expect(task(body)).toMatchObject({
      python_wheel_task: { package_name: 'churn', entry_point: 'train', named_parameters: variables },
      environment_key: 'sluice',
    });
    expect(body.environments).toEqual([
      {
        environment_key: 'sluice',
        spec: { environment_version: '2', dependencies: ['/Volumes/c/s/w/churn-1.0-py3-none-any.whl'] },
      },
    ]);
  });

  it('the settings refuse contradictions', () => {
    const issues = (databricks: Record<string, unknown>) => {
      const r = trainingSpecSchema.safeParse({
        algorithm: 'custom',
        backend: 'databricks',
        target: 'y',
        features: ['a'],
        code: '/x',
        databricks,
      });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ existingClusterId: 'c', newCluster: {} })).toEqual([
      'databricks.newCluster: give existingClusterId or newCluster, not both (neither = serverless)',
    ]);
    expect(issues({ task: 'python_wheel' })).toEqual([
      'databricks.packageName: a python_wheel task needs packageName',
      'databricks.entryPoint: a python_wheel task needs entryPoint',
    ]);
    expect(issues({ packageName: 'p' })).toEqual([
      'databricks.packageName: packageName applies to python_wheel tasks only',
    ]);
    expect(issues({ existingClusterId: 'c', environmentVersion: '2' })).toEqual([
      'databricks.environmentVersion: environmentVersion applies to serverless runs only (no cluster given)',
    ]);
    expect(issues({ cluster: 'c' })[0]).toMatch(/^databricks: Unrecognized key/);
  });
});

describe('run state mapping', () => {
  it.each([
    [
      { state: 'QUEUED', queue_details: { code: 'ACTIVE_RUNS_LIMIT_REACHED' } },
      'queued',
      'QUEUED ACTIVE_RUNS_LIMIT_REACHED',
    ],
    [{ state: 'PENDING' }, 'queued', 'PENDING'],
    [{ state: 'BLOCKED' }, 'queued', 'BLOCKED'],
    [{ state: 'WAITING' }, 'queued', 'WAITING'],
    [{ state: 'RUNNING' }, 'running', 'RUNNING'],
    [{ state: 'TERMINATING' }, 'running', 'TERMINATING'],
    [{ state: 'SOMETHING_NEW' }, 'running', 'SOMETHING_NEW'],
    [
      { state: 'TERMINATED', termination_details: { code: 'SUCCESS', type: 'SUCCESS' } },
      'completed',
      'TERMINATED SUCCESS',
    ],
    [
      { state: 'TERMINATED', termination_details: { code: 'SUCCESS_WITH_FAILURES' } },
      'completed',
      'TERMINATED SUCCESS_WITH_FAILURES',
    ],
    [
      { state: 'TERMINATED', termination_details: { code: 'USER_CANCELED' } },
      'canceled',
      'TERMINATED USER_CANCELED',
    ],
    [{ state: 'TERMINATED', termination_details: { code: 'CANCELED' } }, 'canceled', 'TERMINATED CANCELED'],
  ] as const)('status %j → %s', (status, state, backendStatus) => {
    expect(mapRunState({ status })).toEqual({ state, backendStatus });
  });

  it('a failed termination names its code, type and message', () => {
    expect(
      mapRunState({
        status: {
          state: 'TERMINATED',
          termination_details: {
            code: 'LIBRARY_INSTALLATION_ERROR',
            type: 'CLIENT_ERROR',
            message: 'pip failed',
          },
        },
      }),
    ).toEqual({
      state: 'failed',
      backendStatus: 'TERMINATED LIBRARY_INSTALLATION_ERROR',
      error: {
        code: 'databricks_library_installation_error',
        message: 'the Databricks run ended LIBRARY_INSTALLATION_ERROR (CLIENT_ERROR): pip failed',
      },
    });
  });

  it.each([
    [{ life_cycle_state: 'QUEUED' }, 'queued'],
    [{ life_cycle_state: 'PENDING' }, 'queued'],
    [{ life_cycle_state: 'BLOCKED' }, 'queued'],
    [{ life_cycle_state: 'WAITING_FOR_RETRY' }, 'queued'],
    [{ life_cycle_state: 'RUNNING' }, 'running'],
    [{ life_cycle_state: 'TERMINATING' }, 'running'],
    [{ life_cycle_state: 'TERMINATED', result_state: 'SUCCESS' }, 'completed'],
    [{ life_cycle_state: 'TERMINATED', result_state: 'CANCELED' }, 'canceled'],
    [{ life_cycle_state: 'TERMINATED', result_state: 'FAILED' }, 'failed'],
    [{ life_cycle_state: 'TERMINATED', result_state: 'TIMEDOUT' }, 'failed'],
    [{ life_cycle_state: 'TERMINATED', result_state: 'UPSTREAM_FAILED' }, 'failed'],
    [{ life_cycle_state: 'SKIPPED' }, 'failed'],
    [{ life_cycle_state: 'INTERNAL_ERROR' }, 'failed'],
  ] as const)('state %j → %s', (state, expected) => {
    expect(mapRunState({ state }).state).toBe(expected);
  });

  it('TIMEDOUT is the time limit; a TERMINATED status without a code defers to the older state', () => {
    expect(
      mapRunState({
        state: { life_cycle_state: 'TERMINATED', result_state: 'TIMEDOUT', state_message: 'after 600 s' },
      }).error,
    ).toEqual({ code: 'time_limit_exceeded', message: 'the Databricks run timed out: after 600 s' });
    expect(
      mapRunState({
        status: { state: 'TERMINATED' },
        state: { life_cycle_state: 'TERMINATED', result_state: 'SUCCESS' },
      }).state,
    ).toBe('completed');
  });
});

describe('wire details', () => {
  it('keeps int64 ids exact', () => {
    expect(
      parseDatabricksJson('{"run_id": 9007199254740993, "tasks":[{"run_id":12}], "x": 9007199254740993}'),
    ).toEqual({
      run_id: '9007199254740993',
      tasks: [{ run_id: 12 }],
      x: 9007199254740992,
    });
  });

  it('accepts the jobs container over ABFS or a UC volume as the job root', () => {
    expect(parseJobRoot('abfss://jobs@stsluice.dfs.core.windows.net/')).toBe(
      'abfss://jobs@stsluice.dfs.core.windows.net',
    );
    expect(parseJobRoot('/Volumes/main/sluice/jobs')).toBe('/Volumes/main/sluice/jobs');
    expect(abfssJobRoot('stsluice')).toBe('abfss://jobs@stsluice.dfs.core.windows.net');
    expect(() => parseJobRoot('abfss://models@stsluice.dfs.core.windows.net')).toThrow(/"jobs" container/);
    expect(() => parseJobRoot('/mnt/jobs')).toThrow(
      expect.objectContaining({ code: 'databricks_not_configured' }),
    );
  });
});

describe('backendsFromConfig: databricks', () => {
  const env = {
    COSMOS_ENDPOINT: 'https://localhost:8081',
    ARTIFACT_STORAGE_CONNECTION:
      'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;',
  };
  const credential = () => ({ getToken: async () => null });

  it('fails with databricks_not_configured naming DATABRICKS_HOST when it is missing', () => {
    const config = loadConfig(env);
    const backends = backendsFromConfig(config, ArtifactStore.fromConfig(config), credential);
    expect(() => backends('databricks')).toThrow(
      expect.objectContaining({
        code: 'databricks_not_configured',
        message: expect.stringContaining('DATABRICKS_HOST'),
      }),
    );
  });

  it('builds the backend once, on first use, when DATABRICKS_HOST is set', () => {
    const config = loadConfig({ ...env, DATABRICKS_HOST: 'https://adb-1.2.azuredatabricks.net' });
    const backends = backendsFromConfig(config, ArtifactStore.fromConfig(config), credential);
    const first = backends('databricks');
    expect(first.name).toBe('databricks');
    expect(backends('databricks')).toBe(first);
  });

  it('refuses a job root that is neither the jobs container nor a volume', () => {
    const config = loadConfig({
      ...env,
      DATABRICKS_HOST: 'https://adb-1.2.azuredatabricks.net',
      DATABRICKS_JOB_ROOT: 'dbfs:/tmp',
    });
    const backends = backendsFromConfig(config, ArtifactStore.fromConfig(config), credential);
    expect(() => backends('databricks')).toThrow(
      expect.objectContaining({ code: 'databricks_not_configured' }),
    );
  });
});

describe('the Jobs API client', () => {
  const answers = (list: (Response | Error)[]) => {
    const calls: { url: string; init: RequestInit }[] = [];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      const next = list.shift();
      if (!next) throw new Error('no more answers');
      if (next instanceof Error) throw next;
      return next;
    }) as unknown as typeof fetch;
    return { calls, fetchImpl };
  };
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    });

  it('waits what Retry-After asks (seconds or a date), capped, and doubles without it', async () => {
    const waits: number[] = [];
    const { calls, fetchImpl } = answers([
      json(429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }, { 'retry-after': '3' }),
      json(503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'x' }, { 'retry-after': '120' }),
      new TypeError('fetch failed'),
      json(200, { run_id: 42 }),
    ]);
    const client = new DatabricksClient({
      host: 'https://adb-1.2.azuredatabricks.net/?o=1',
      token: 'pat',
      fetch: fetchImpl,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await expect(client.submit({ idempotency_token: 'j' })).resolves.toBe('42');
    expect(waits).toEqual([3_000, 20_000, 20_000]);
    expect(calls.map((c) => c.url)).toEqual(
      Array(4).fill('https://adb-1.2.azuredatabricks.net/api/2.2/jobs/runs/submit'),
    );
    expect((calls[0]!.init.headers as Record<string, string>).authorization).toBe('Bearer pat');

    const dated: number[] = [];
    const later = new Date(Date.now() + 60_000).toUTCString();
    const second = answers([
      json(429, {}, { 'retry-after': later }),
      json(200, { run_id: '9007199254740993' }),
    ]);
    const c2 = new DatabricksClient({
      host: 'https://h.example.net',
      token: 'pat',
      fetch: second.fetchImpl,
      maxRetryDelayMs: 120_000,
      sleep: async (ms) => {
        dated.push(ms);
      },
    });
    await expect(c2.submit({})).resolves.toBe('9007199254740993');
    expect(dated[0]).toBeGreaterThan(50_000);
    expect(dated[0]).toBeLessThanOrEqual(60_000);
  });

  it('does not retry a 4xx, and names the error code and message', async () => {
    const { calls, fetchImpl } = answers([
      json(400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'Job 1 does not exist.' }),
    ]);
    const client = new DatabricksClient({ host: 'https://h.example.net', token: 'pat', fetch: fetchImpl });
    await expect(client.getRun('1')).rejects.toMatchObject({
      code: 'databricks_rejected',
      message: 'runs/get 1: HTTP 400 INVALID_PARAMETER_VALUE: Job 1 does not exist.',
    });
    expect(calls).toHaveLength(1);
  });

  it('cancels with the run id as a number when it is exact, as digits when it is not', async () => {
    const { calls, fetchImpl } = answers([json(200, {}), json(200, {})]);
    const client = new DatabricksClient({ host: 'https://h.example.net', token: 'pat', fetch: fetchImpl });
    await client.cancel('123');
    await client.cancel('9007199254740993');
    expect(calls.map((c) => c.init.body)).toEqual(['{"run_id":123}', '{"run_id":"9007199254740993"}']);
  });
});

describe('where a Databricks run may write: the joboutputs container, never jobs', () => {
  const client = new DatabricksClient({ host: 'https://adb-1.2.azuredatabricks.net', token: 't' });
  const store = {} as ArtifactStore;
  const record = {
    target: 'y',
    task: 'regression' as const,
    featureKinds: [{ name: 'a', kind: 'number' as const }],
    sample: [],
    rows: { train: 1, validation: 1, holdout: 1 },
  };

  it('an ABFS job root gets the joboutputs container of the same account as output root', () => {
    expect(defaultOutputRoot('abfss://jobs@stabc.dfs.core.windows.net')).toBe(
      'abfss://joboutputs@stabc.dfs.core.windows.net',
    );
    const backend = new DatabricksTrainingBackend({ client, store, jobRoot: abfssJobRoot('stabc') });
    const v = backend.variables('j1', record, { hyperparameters: {}, seed: 1 });
    expect(v.SLUICE_OUTPUT).toBe('abfss://joboutputs@stabc.dfs.core.windows.net/j1');
    expect(v.SLUICE_TRAIN).toBe('abfss://jobs@stabc.dfs.core.windows.net/j1/data/train.csv');
  });

  it('a volume job root needs a volume output root, and takes one', () => {
    expect(
      () => new DatabricksTrainingBackend({ client, store, jobRoot: '/Volumes/main/sluice/jobs' }),
    ).toThrow(
      expect.objectContaining({
        code: 'databricks_not_configured',
        message: expect.stringContaining('DATABRICKS_OUTPUT_ROOT'),
      }),
    );
    const backend = new DatabricksTrainingBackend({
      client,
      store,
      jobRoot: '/Volumes/main/sluice/jobs',
      outputRoot: '/Volumes/main/sluice/joboutputs/',
    });
    expect(backend.variables('j2', record, { hyperparameters: {}, seed: 1 }).SLUICE_OUTPUT).toBe(
      '/Volumes/main/sluice/joboutputs/j2',
    );
  });

  it('refuses an output root in the jobs container (where Sluice keeps its records) or elsewhere', () => {
    for (const bad of [
      'abfss://jobs@stabc.dfs.core.windows.net',
      'abfss://models@stabc.dfs.core.windows.net',
      'dbfs:/tmp',
    ]) {
      expect(() => parseOutputRoot(bad)).toThrow(
        expect.objectContaining({ code: 'databricks_not_configured' }),
      );
    }
    expect(parseOutputRoot('abfss://joboutputs@stabc.dfs.core.windows.net/')).toBe(
      'abfss://joboutputs@stabc.dfs.core.windows.net',
    );
  });

  it('DATABRICKS_OUTPUT_ROOT reaches the backend from the settings', () => {
    const config = loadConfig({
      COSMOS_ENDPOINT: 'https://localhost:8081',
      ARTIFACT_STORAGE_CONNECTION:
        'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;',
      DATABRICKS_HOST: 'https://adb-1.2.azuredatabricks.net',
      DATABRICKS_JOB_ROOT: '/Volumes/main/sluice/jobs',
      DATABRICKS_OUTPUT_ROOT: '/Volumes/main/sluice/joboutputs',
    });
    const backends = backendsFromConfig(config, ArtifactStore.fromConfig(config), () => ({
      getToken: async () => null,
    }));
    const backend = backends('databricks') as DatabricksTrainingBackend;
    expect(backend.variables('j3', record, { hyperparameters: {}, seed: 1 }).SLUICE_OUTPUT).toBe(
      '/Volumes/main/sluice/joboutputs/j3',
    );
  });
});
