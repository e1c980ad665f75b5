/**
 * The MLflow variables a linked training job gets on each backend (lib/training/backends/
 * mlflowEnv.ts): the run and experiment always; the tracking URI unless the platform sets it; the
 * host's credentials only for a local job, and only the ones its tracking URI uses; on Databricks
 * never a credential: environment variables of a new job cluster, the launcher's variables on an
 * existing cluster or serverless compute, widgets of a notebook, named parameters of a wheel.
 */
import { trainingSpecSchema } from '../../../lib/contracts/trainingSpec';
import type { CustomTrainingSpec } from '../../../lib/contracts/trainingSpec';
import { runSubmitBody } from '../../../lib/training/backends/databricksRun';
import {
  LOCAL_MLFLOW_ENV,
  localJobMlflowEnv,
  mlflowJobVariables,
} from '../../../lib/training/backends/mlflowEnv';

const link = (trackingUri: string) => ({ trackingUri, experimentId: '7', runId: 'abc123' });
const creds = {
  MLFLOW_TRACKING_TOKEN: 'tok',
  MLFLOW_TRACKING_USERNAME: 'u',
  MLFLOW_TRACKING_PASSWORD: 'p',
  DATABRICKS_HOST: 'https://adb-1.azuredatabricks.net',
  DATABRICKS_TOKEN: 'dapi',
};
const ids = { MLFLOW_RUN_ID: 'abc123', MLFLOW_EXPERIMENT_ID: '7' };
/** A user job on Databricks running `command` from a workspace folder, on the `databricks` compute. */
const databricksSpec = (
  databricks: Record<string, unknown>,
  command = 'python train.py',
): CustomTrainingSpec =>
  trainingSpecSchema.parse({
    algorithm: 'custom',
    backend: 'databricks',
    target: 'y',
    features: ['a'],
    code: '/Workspace/Users/me/job',
    command,
    databricks,
  }) as CustomTrainingSpec;

describe('mlflowJobVariables', () => {
  it('gives nothing without a link', () => {
    expect(mlflowJobVariables(undefined, 'local', creds)).toEqual({});
  });

  it('local: the URI and the host credentials that server uses', () => {
    expect(mlflowJobVariables(link('https://mlflow.contoso.com'), 'local', creds)).toEqual({
      ...ids,
      MLFLOW_TRACKING_URI: 'https://mlflow.contoso.com',
      MLFLOW_TRACKING_TOKEN: 'tok',
      MLFLOW_TRACKING_USERNAME: 'u',
      MLFLOW_TRACKING_PASSWORD: 'p',
    });
    expect(
      mlflowJobVariables(link('databricks'), 'local', {
        DATABRICKS_HOST: creds.DATABRICKS_HOST,
        DATABRICKS_TOKEN: 'dapi',
      }),
    ).toEqual({
      ...ids,
      MLFLOW_TRACKING_URI: 'databricks',
      DATABRICKS_HOST: 'https://adb-1.azuredatabricks.net',
      DATABRICKS_TOKEN: 'dapi',
    });
  });

  it('remote backends: never a credential; Azure ML sets its own workspace URI', () => {
    expect(mlflowJobVariables(link('https://mlflow.contoso.com'), 'azureml', creds)).toEqual({
      ...ids,
      MLFLOW_TRACKING_URI: 'https://mlflow.contoso.com',
    });
    const ws =
      'azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w';
    expect(mlflowJobVariables(link(ws), 'azureml', creds)).toEqual(ids);
    expect(mlflowJobVariables(link('databricks'), 'databricks', creds)).toEqual({
      ...ids,
      MLFLOW_TRACKING_URI: 'databricks',
    });
  });

  it('Databricks: environment variables of a new job cluster only, never parameters', () => {
    const env = mlflowJobVariables(link('databricks'), 'databricks');
    const spec = (databricks: Record<string, unknown>) =>
      databricksSpec(databricks, 'python train.py --out ${SLUICE_OUTPUT}');
    const variables = { SLUICE_OUTPUT: '/Volumes/c/s/v/out' };
    const cluster = runSubmitBody({
      jobId: 'j1',
      spec: spec({ task: 'spark_python', newCluster: { spark_version: '15.4.x-scala2.12', num_workers: 1 } }),
      variables,
      env,
    }) as {
      tasks: {
        new_cluster: { spark_env_vars: Record<string, string> };
        spark_python_task: { parameters: string[] };
      }[];
    };
    expect(cluster.tasks[0]!.new_cluster.spark_env_vars).toMatchObject(env);
    expect(cluster.tasks[0]!.spark_python_task.parameters.join(' ')).not.toContain('MLFLOW');
    const serverless = runSubmitBody({ jobId: 'j1', spec: spec({ task: 'spark_python' }), variables, env });
    expect(JSON.stringify(serverless)).not.toContain('MLFLOW');
  });
});

describe('mlflowJobVariables on every Databricks compute', () => {
  const env = mlflowJobVariables(link('databricks'), 'databricks', creds);
  const spec = (databricks: Record<string, unknown>) => databricksSpec(databricks);
  const variables = { SLUICE_OUTPUT: '/Volumes/c/s/v/out' };
  const launcher = '/Volumes/c/s/v/j1/launcher/sluice_launch.py';

  it('an existing cluster and serverless compute get them through the launcher, as a new cluster gets them in its environment', () => {
    expect(env).toEqual({ ...ids, MLFLOW_TRACKING_URI: 'databricks' });
    for (const databricks of [{ existingClusterId: '0101-abc' }, {}]) {
      const body = runSubmitBody({ jobId: 'j1', spec: spec(databricks), variables, env, launcher }) as {
        tasks: { spark_python_task: { python_file: string; parameters: string[] } }[];
      };
      const { python_file, parameters } = body.tasks[0]!.spark_python_task;
      expect(python_file).toBe(launcher);
      expect(parameters).toEqual([
        '--env',
        'MLFLOW_EXPERIMENT_ID=7',
        '--env',
        'MLFLOW_RUN_ID=abc123',
        '--env',
        'MLFLOW_TRACKING_URI=databricks',
        '--env',
        'SLUICE_OUTPUT=/Volumes/c/s/v/out',
        '--file',
        '/Workspace/Users/me/job/train.py',
        '--',
      ]);
      // Of the host's credentials, nothing reaches the run's definition.
      for (const secret of Object.values(creds).filter((v) => !v.startsWith('https://')))
        expect(JSON.stringify(body)).not.toMatch(new RegExp(`[="]${secret}"`));
    }
  });

  it('a notebook gets them as widgets, a wheel as named parameters, on any compute', () => {
    for (const databricks of [{}, { existingClusterId: 'c' }]) {
      const notebook = runSubmitBody({
        jobId: 'j1',
        spec: { ...spec({ ...databricks, task: 'notebook' }), command: undefined },
        variables,
        env,
      }) as { tasks: { notebook_task: { base_parameters: Record<string, string> } }[] };
      expect(notebook.tasks[0]!.notebook_task.base_parameters).toEqual({ ...variables, ...env });
      const wheel = runSubmitBody({
        jobId: 'j1',
        spec: {
          ...spec({ ...databricks, task: 'python_wheel', packageName: 'churn', entryPoint: 'train' }),
          command: undefined,
        },
        variables,
        env,
      }) as { tasks: { python_wheel_task: { named_parameters: Record<string, string> } }[] };
      expect(wheel.tasks[0]!.python_wheel_task.named_parameters).toEqual({ ...variables, ...env });
    }
  });

  it('a wheel on a new job cluster gets them as environment variables only, so its argparse options stay the SLUICE_* ones', () => {
    const wheel = runSubmitBody({
      jobId: 'j1',
      spec: {
        ...spec({
          newCluster: { spark_version: '15.4.x-scala2.12', node_type_id: 'Standard_DS3_v2', num_workers: 0 },
          task: 'python_wheel',
          packageName: 'churn',
          entryPoint: 'train',
        }),
        command: undefined,
      },
      variables,
      env,
    }) as {
      tasks: {
        python_wheel_task: { named_parameters: Record<string, string> };
        new_cluster: { spark_env_vars: Record<string, string> };
      }[];
    };
    expect(wheel.tasks[0]!.python_wheel_task.named_parameters).toEqual(variables);
    expect(wheel.tasks[0]!.new_cluster.spark_env_vars).toMatchObject(env);
  });
});

describe('localJobMlflowEnv', () => {
  it('passes on MLFLOW_* and DATABRICKS_* strings only', () => {
    const value = JSON.stringify({ MLFLOW_RUN_ID: 'r', DATABRICKS_TOKEN: 'd', PATH: '/evil', MLFLOW_X: 3 });
    expect(localJobMlflowEnv({ [LOCAL_MLFLOW_ENV]: value })).toEqual({
      MLFLOW_RUN_ID: 'r',
      DATABRICKS_TOKEN: 'd',
    });
    expect(localJobMlflowEnv({ [LOCAL_MLFLOW_ENV]: 'not json' })).toEqual({});
    expect(localJobMlflowEnv({ [LOCAL_MLFLOW_ENV]: '["MLFLOW_RUN_ID"]' })).toEqual({});
    expect(localJobMlflowEnv({})).toEqual({});
  });
});
