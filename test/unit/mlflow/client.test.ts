import type { TokenCredential } from '@azure/identity';
import { NonRetriableError, TransientError } from '../../../lib/errors';
import { MlflowClient, MlflowRejected } from '../../../lib/mlflow/client';
import type { MlflowTarget } from '../../../lib/mlflow/target';
import { FakeMlflow } from '../../support/fakes/mlflow';

/**
 * The REST client against the fake MLflow server over loopback HTTP: the documented paths and
 * fields, RESOURCE_ALREADY_EXISTS as a success where it means a retry, 429/5xx retried a bounded
 * number of times, 401/403/INVALID_PARAMETER_VALUE never retried.
 */
describe('MlflowClient', () => {
  let fake: FakeMlflow;
  const sleeps: number[] = [];
  const client = (target: Partial<MlflowTarget> = {}, credential?: TokenCredential) =>
    new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'none' }, flavor: 'mlflow', ...target },
      ...(credential ? { credential: () => credential } : {}),
      maxAttempts: 3,
      firstDelayMs: 100,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });

  beforeEach(async () => {
    fake = await new FakeMlflow().start();
    sleeps.length = 0;
  });
  afterEach(() => fake.stop());

  it('finds or creates an experiment by name with the documented calls', async () => {
    const c = client();
    const id = await c.ensureExperiment('churn', [{ key: 'sluice.pipeline', value: 'churn' }]);
    expect(await c.ensureExperiment('churn')).toBe(id);
    expect(fake.calls.map((x) => [x.method, x.path, x.status])).toEqual([
      ['GET', 'experiments/get-by-name', 404],
      ['POST', 'experiments/create', 200],
      ['GET', 'experiments/get-by-name', 200],
    ]);
    expect(fake.calls[0]!.body).toEqual({ experiment_name: 'churn' });
    expect(fake.calls[1]!.body).toEqual({
      name: 'churn',
      tags: [{ key: 'sluice.pipeline', value: 'churn' }],
    });
  });

  it('refuses a deleted experiment, naming what to do, instead of retrying forever', async () => {
    const c = client();
    const id = await c.ensureExperiment('gone');
    fake.experiments.get(id)!.lifecycle_stage = 'deleted';
    const err = await c.ensureExperiment('gone').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonRetriableError);
    expect((err as NonRetriableError).code).toBe('mlflow_experiment_deleted');
    expect((err as Error).message).toContain('MLFLOW_EXPERIMENT_PREFIX');
  });

  it('treats RESOURCE_ALREADY_EXISTS on create as someone else having created it', async () => {
    const c = client();
    const other = client();
    // Between our lookup and our create, another instance creates the experiment.
    const realCreate = c.createExperiment.bind(c);
    c.createExperiment = async (name, tags) => {
      await other.createExperiment(name, tags);
      return realCreate(name, tags);
    };
    const id = await c.ensureExperiment('race');
    expect(id).toBe([...fake.experiments.values()][0]!.experiment_id);
    expect(fake.calls.map((x) => `${x.path} ${x.status}`)).toEqual([
      'experiments/get-by-name 404',
      'experiments/create 200',
      'experiments/create 400',
      'experiments/get-by-name 200',
    ]);
    expect(await c.ensureRegisteredModel('m')).toBe(true);
    expect(await c.ensureRegisteredModel('m')).toBe(false);
  });

  it('creates, searches, logs and ends a run with MLflow field names', async () => {
    const c = client();
    const exp = await c.ensureExperiment('e');
    const info = await c.createRun({
      experiment_id: exp,
      run_name: 'run-1',
      start_time: 1000,
      tags: [{ key: 'sluice.run_id', value: "it's-1" }],
    });
    expect(await c.findRunsByTag(exp, 'sluice.run_id', "it's-1")).toEqual([
      expect.objectContaining({ run_id: info.run_id }),
    ]);
    expect(await c.findRunsByTag(exp, 'sluice.run_id', 'other')).toEqual([]);
    await c.logBatch(info.run_id, {
      metrics: [{ key: 'auc', value: 0.9, timestamp: 2000, step: 3 }],
      params: [{ key: 'seed', value: '42' }],
      tags: [{ key: 'k', value: 'v' }],
    });
    await c.logInputs(info.run_id, [
      {
        dataset: { name: 'd', digest: 'a'.repeat(36), source_type: 'http', source: '{"url":"https://x"}' },
        tags: [{ key: 'mlflow.data.context', value: 'training' }],
      },
    ]);
    await c.updateRun({ run_id: info.run_id, status: 'FINISHED', end_time: 3000 });
    const run = fake.runs.get(info.run_id)!;
    expect(run.info).toMatchObject({
      status: 'FINISHED',
      end_time: 3000,
      start_time: 1000,
      run_name: 'run-1',
    });
    expect(run.metrics).toEqual([{ key: 'auc', value: 0.9, timestamp: 2000, step: 3 }]);
    expect(run.params.get('seed')).toBe('42');
    expect(run.inputs[0]!.dataset.digest).toBe('a'.repeat(36));
    // A whole SHA-256 as the digest is refused, as by MLflow's validation (36 characters at most).
    const long = await c
      .logInputs(info.run_id, [
        {
          dataset: { name: 'd', digest: 'a'.repeat(64), source_type: 'http', source: '{"url":"https://x"}' },
        },
      ])
      .catch((e: unknown) => e);
    expect((long as MlflowRejected).code).toBe('mlflow_invalid_parameter_value');
    const search = fake.calls.find((x) => x.path === 'runs/search')!;
    expect(search.body).toEqual({
      experiment_ids: [exp],
      filter: "tags.`sluice.run_id` = 'it\\'s-1'",
      max_results: 2,
    });
  });

  it('registers a model version and sets an alias', async () => {
    const c = client();
    await c.ensureRegisteredModel('churn');
    const v = await c.createModelVersion({
      name: 'churn',
      source: 'https://blob/m',
      run_link: 'https://s/run',
    });
    await c.setAlias('churn', 'production', v.version);
    expect(fake.models.get('churn')!.aliases.get('production')).toBe('1');
    expect(fake.okCalls()).toEqual([
      'POST registered-models/create',
      'POST model-versions/create',
      'POST registered-models/alias',
    ]);
  });

  it('retries 429 and 503 with a doubling, bounded backoff, then succeeds', async () => {
    fake.failNext(2, 503);
    await client().ensureExperiment('x');
    expect(fake.calls.slice(0, 3).map((x) => x.status)).toEqual([503, 503, 404]);
    expect(sleeps).toEqual([100, 200]);
    sleeps.length = 0;
    fake.failNext(1, 429);
    await client().ensureExperiment('x');
    // Retry-After: 0 is honoured.
    expect(sleeps).toEqual([0]);
  });

  it('gives up after maxAttempts with a TransientError naming the outage', async () => {
    fake.down = true;
    const err = await client()
      .ensureExperiment('x')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).code).toBe('mlflow_unavailable');
    expect(fake.calls).toHaveLength(3);
  });

  it('says unreachable when nothing listens', async () => {
    await fake.stop();
    const c = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'none' }, flavor: 'mlflow' },
      maxAttempts: 2,
      sleep: async () => undefined,
    });
    const err = await c.ensureExperiment('x').catch((e: unknown) => e);
    expect((err as TransientError).code).toBe('mlflow_unreachable');
    fake = await new FakeMlflow().start();
  });

  it('does not retry 401, 403 or INVALID_PARAMETER_VALUE', async () => {
    fake.token = 'right';
    const none = await client()
      .ensureExperiment('x')
      .catch((e: unknown) => e);
    expect(none).toBeInstanceOf(NonRetriableError);
    expect((none as MlflowRejected).code).toBe('mlflow_unauthorized');
    const wrong = await client({ auth: { kind: 'bearer', token: 'wrong' } })
      .ensureExperiment('x')
      .catch((e: unknown) => e);
    expect((wrong as MlflowRejected).code).toBe('mlflow_forbidden');
    expect(fake.calls).toHaveLength(2);

    const ok = client({ auth: { kind: 'bearer', token: 'right' } });
    const exp = await ok.ensureExperiment('x');
    const run = await ok.createRun({ experiment_id: exp });
    await ok.logBatch(run.run_id, { metrics: [], params: [{ key: 'seed', value: '1' }], tags: [] });
    const before = fake.calls.length;
    const changed = await ok
      .logBatch(run.run_id, { metrics: [], params: [{ key: 'seed', value: '2' }], tags: [] })
      .catch((e: unknown) => e);
    expect(changed).toBeInstanceOf(MlflowRejected);
    expect((changed as MlflowRejected).code).toBe('mlflow_invalid_parameter_value');
    expect((changed as MlflowRejected).errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(fake.calls.length).toBe(before + 1);
  });

  it('sends basic credentials, and an Entra token under the workspace path for azureml', async () => {
    await client({ auth: { kind: 'basic', username: 'u', password: 'p' } }).ensureExperiment('a');
    expect(fake.calls[0]!.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    const scopes: string[] = [];
    const credential: TokenCredential = {
      getToken: async (scope) => {
        scopes.push(String(scope));
        return { token: 'entra-token', expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    const ws =
      '/mlflow/v1.0/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w';
    await client(
      {
        baseUrl: `${fake.url}${ws}`,
        auth: { kind: 'entra', scope: 'https://management.azure.com/.default' },
      },
      credential,
    ).ensureExperiment('b');
    const last = fake.calls.at(-1)!;
    expect(last.prefix).toBe(ws);
    expect(last.authorization).toBe('Bearer entra-token');
    expect(scopes).toEqual([
      'https://management.azure.com/.default',
      'https://management.azure.com/.default',
    ]);
  });
});
