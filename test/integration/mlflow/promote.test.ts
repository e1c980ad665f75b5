/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Promoting a model trained elsewhere, against the fake MLflow server over HTTP and Azurite: model
 * URIs resolved at start (version, alias pinned to its version, run folder) with every call
 * asserted; unknown models, runs and aliases, a folder that is not a model and artifacts outside
 * the proxy refused with a 400 naming them; then the train step's import run twice (same stored
 * folder, same result), through an outage, and refused when too large or not fitting the pipeline.
 */
import { importModel } from '../../../activities/importModel';
import { importModelActivity } from '../../../lib/contracts/mlflowCandidate';
import { MAX_ACTIVITY_PAYLOAD_BYTES, payloadBytes } from '../../../lib/contracts/activity';
import { openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { MlflowClient } from '../../../lib/mlflow/client';
import type { PromoteDeps } from '../../../lib/mlflow/promote';
import { artifactProxyPath, parseModelUri, resolveMlflowCandidate } from '../../../lib/mlflow/promote';
import type { ArtifactStore } from '../../../lib/storage/blob';
import type { BlobEmulator } from '../../support/emulators';
import type { FakeMlflow } from '../../support/fakes/mlflow';
import {
  contract,
  loggedModelFolder,
  refusal,
  spec,
  startPromoteStores,
  storedModelPaths,
} from '../../support/mlflowPromote';

jest.setTimeout(120_000);

describe('promoting an MLflow model', () => {
  let azurite: BlobEmulator;
  let store: ArtifactStore;
  let fake: FakeMlflow;
  let deps: PromoteDeps;
  let dataset: { uri: string; sha256: string };
  let runId: string;
  let plainRunId: string;
  let narrowRunId: string;

  beforeAll(async () => {
    ({ azurite, fake, store, dataset } = await startPromoteStores());
    const client = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'none' }, flavor: 'mlflow' },
      sleep: async () => undefined,
    });
    deps = { tracking: client, registry: client };
    runId = fake.logModel('databricks-team', loggedModelFolder());
    fake.registerModel('churn', runId); // version 1
    fake.registerModel('churn', runId); // version 2
    fake.models.get('churn')!.aliases.set('champion', '2');
    plainRunId = fake.logModel('databricks-team', { 'notes.txt': 'no model here' }, 'notes');
    narrowRunId = fake.logModel('databricks-team', loggedModelFolder(['x0', 'x1']));
  });
  afterAll(async () => {
    await Promise.all([azurite?.stop(), fake?.stop()]);
  });

  it('parses the three URI forms and refuses others, naming the field', () => {
    expect(parseModelUri('models:/churn/7')).toEqual({ kind: 'version', name: 'churn', version: '7' });
    expect(parseModelUri('models:/main.ml.churn@champion')).toEqual({
      kind: 'alias',
      name: 'main.ml.churn',
      alias: 'champion',
    });
    expect(parseModelUri('runs:/abc123/model/')).toEqual({ kind: 'run', runId: 'abc123', path: 'model' });
    for (const bad of [
      'churn',
      'models:/churn',
      's3://bucket/model',
      'runs:/abc/../x',
      'models:/churn/Production',
    ]) {
      expect(() => parseModelUri(bad)).toThrow(
        expect.objectContaining({ code: 'mlflow_uri_invalid', field: 'candidate.mlflow' }),
      );
    }
    expect(artifactProxyPath('mlflow-artifacts:/1/r/artifacts/model')).toBe('1/r/artifacts/model');
    expect(artifactProxyPath('mlflow-artifacts://host:5000/1/r/artifacts/model/')).toBe(
      '1/r/artifacts/model',
    );
    expect(artifactProxyPath('s3://bucket/1/r/artifacts/model')).toBeUndefined();
    expect(artifactProxyPath('mlflow-artifacts:/1/../../etc')).toBeUndefined();
  });

  it('resolves a version, pins an alias to its version, and finds a run folder', async () => {
    const folder = `${fake.runs.get(runId)!.info.experiment_id}/${runId}/artifacts/model`;
    fake.calls.length = 0;
    await expect(resolveMlflowCandidate(deps, 'models:/churn/1')).resolves.toEqual({
      uri: 'models:/churn/1',
      artifactPath: folder,
      name: 'churn',
      version: '1',
      runId,
    });
    expect(fake.okCalls()).toEqual([
      'GET model-versions/get',
      'GET model-versions/get-download-uri',
      `GET ${fake.calls[2]!.path}`,
    ]);
    expect(fake.calls[2]).toMatchObject({ path: 'artifacts', body: { path: folder } });
    await expect(resolveMlflowCandidate(deps, 'models:/churn@champion')).resolves.toMatchObject({
      version: '2',
      artifactPath: folder,
    });
    await expect(resolveMlflowCandidate(deps, `runs:/${runId}/model`)).resolves.toEqual({
      uri: `runs:/${runId}/model`,
      artifactPath: folder,
      runId,
    });
  });

  it('refuses at start what MLflow does not have, naming it', async () => {
    const cases: [string, string, RegExp][] = [
      ['models:/churn/9', 'mlflow_model_not_found', /models:\/churn\/9.*RESOURCE_DOES_NOT_EXIST/],
      ['models:/churn@staging', 'mlflow_model_not_found', /alias models:\/churn@staging/],
      ['models:/nobody/1', 'mlflow_model_not_found', /nobody/],
      ['runs:/0123abcd/model', 'mlflow_model_not_found', /run 0123abcd/],
      [`runs:/${plainRunId}/notes`, 'mlflow_not_a_model', /has no MLmodel file \(it has notes\.txt\)/],
      [`runs:/${runId}/elsewhere`, 'mlflow_not_a_model', /it is empty/],
    ];
    for (const [uri, code, message] of cases) {
      const err = await refusal(resolveMlflowCandidate(deps, uri));
      expect({ uri, code: err.code, status: err.status, field: err.field }).toEqual({
        uri,
        code,
        status: 400,
        field: 'candidate.mlflow',
      });
      expect(err.message).toMatch(message);
    }
    // MLflow refusing Sluice's own credentials is not the caller's mistake: 502 (startRun), named.
    fake.token = 'the-right-token';
    try {
      const denied = await refusal(resolveMlflowCandidate(deps, 'models:/churn/1'));
      expect(denied).toMatchObject({ code: 'mlflow_unauthorized', status: 502 });
      expect(denied.message).toMatch(/MLFLOW_TRACKING_TOKEN/);
    } finally {
      fake.token = undefined;
    }
    // A version whose files are not behind the artifact proxy.
    const v = fake.models.get('churn')!.versions;
    v.push({ ...v[0]!, version: String(v.length + 1), download_uri: 's3://team-bucket/churn/model' });
    const err = await refusal(resolveMlflowCandidate(deps, `models:/churn/${v.length}`));
    expect(err).toMatchObject({ code: 'mlflow_artifacts_unreachable', status: 400 });
    expect(err.message).toContain('s3://team-bucket/churn/model');
    expect(err.message).toContain('Amazon S3 (s3:)');
    // Each non-proxy store is refused at start, naming its scheme, before anything is stored.
    for (const [location, named] of [
      ['dbfs:/databricks/mlflow-registry/abc/models/model', 'Databricks DBFS (dbfs:)'],
      ['abfss://models@acct.dfs.core.windows.net/churn', 'Azure Data Lake Storage (abfss:)'],
      ['azureml://datastores/workspaceblobstore/paths/churn', 'Azure ML datastore (azureml:)'],
    ] as const) {
      v.push({ ...v[0]!, version: String(v.length + 1), download_uri: location });
      const refused = await refusal(resolveMlflowCandidate(deps, `models:/churn/${v.length}`));
      expect(refused).toMatchObject({
        code: 'mlflow_artifacts_unreachable',
        status: 400,
        field: 'candidate.mlflow',
      });
      expect(refused.message).toContain(location);
      expect(refused.message).toContain(named);
    }
  });

  it('importModel twice: the same checked folder stored once, the same job result', async () => {
    const candidate = await resolveMlflowCandidate(deps, 'models:/churn@champion');
    const input = importModelActivity.input.parse({
      runId: 'churn-20260301-000000-abcd',
      candidate,
      spec,
      dataset,
      pipeline: { name: 'churn', version: 1 },
    });
    const activity = importModel({ store, tracking: deps.tracking, contractOf: async () => contract });
    fake.calls.length = 0;
    const first = await activity(input);
    const downloads = fake.okCalls().filter((c) => c.startsWith('GET artifacts/'));
    expect(downloads.sort()).toEqual(
      ['MLmodel', 'model.json', 'model.onnx'].map((f) => `GET artifacts/${candidate.artifactPath}/${f}`),
    );
    fake.failNext(2, 503); // an outage the client's bounded retry rides out
    const again = await activity(input);
    expect(again).toEqual(first);
    expect(importModelActivity.output.parse(first)).toEqual(first);
    expect(payloadBytes(first)).toBeLessThan(MAX_ACTIVITY_PAYLOAD_BYTES);
    expect(first).toMatchObject({
      algorithm: 'mlflow',
      task: 'classification',
      artifact: { format: 'mlflow', flavor: 'onnx', target: 'label', classes: ['no', 'yes'] },
    });
    expect(first.rows.holdout).toBeGreaterThan(0);
    // What was stored is the folder MLflow served, verified against its manifest on reading.
    const opened = await openModelFolder(store, first.modelUri, first.modelDigest);
    expect(opened.manifest.map((f) => f.path).sort()).toEqual(['MLmodel', 'model.json', 'model.onnx']);
  });

  it('refuses a folder over the size limit, and one that does not fit the pipeline, storing nothing', async () => {
    const input = (uri: string) =>
      resolveMlflowCandidate(deps, uri).then((candidate) =>
        importModelActivity.input.parse({ runId: 'r', candidate, spec, dataset }),
      );
    const stored = () => storedModelPaths(store);
    const before = await stored();
    const small = importModel({ store, tracking: deps.tracking, maxModelBytes: 1_000 });
    await expect(small(await input('models:/churn/1'))).rejects.toMatchObject({ code: 'model_too_large' });
    const narrow = await refusal(
      importModel({ store, tracking: deps.tracking })(await input(`runs:/${narrowRunId}/model`)),
    );
    expect(narrow.code).toBe('onnx_inputs_mismatch');
    expect(narrow.message).toMatch(/x2|x3|segment|input/);
    expect(await stored()).toEqual(before);
  });
});
