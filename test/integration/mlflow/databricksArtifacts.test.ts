/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Promoting a model a Databricks workspace holds, against the fake MLflow server's Databricks
 * endpoints over HTTP and Azurite: run artifacts under dbfs:/databricks/mlflow-tracking (MLflow's
 * artifacts/list, credentials-for-read, signed URIs with their headers and without Sluice's token),
 * a workspace registry copy read through its source, other dbfs:/ paths (DBFS list and 1 MB reads)
 * and Unity Catalog volumes (the Files API), each resolved at start and imported by the train step
 * with every call asserted; then the faults: unknown and forbidden paths as named 400s at start,
 * paths escaping the folder, signed URIs off Azure Storage, 429/5xx and an expired SAS retried with
 * a bound, the size and file-count limits, and nothing stored on any failure.
 */
import { importModel } from '../../../activities/importModel';
import { importModelActivity } from '../../../lib/contracts/mlflowCandidate';
import { openModelFolder } from '../../../lib/mlmodel/blobFolder';
import type { Fetch } from '../../../lib/mlflow/client';
import { MlflowClient } from '../../../lib/mlflow/client';
import {
  checkSignedUri,
  databricksArtifactReader,
  parseDatabricksLocation,
} from '../../../lib/mlflow/databricksArtifacts';
import type { PromoteDeps } from '../../../lib/mlflow/promote';
import { downloadArtifactFolder, resolveMlflowCandidate } from '../../../lib/mlflow/promote';
import type { ArtifactStore } from '../../../lib/storage/blob';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
import { startOtherOrigin } from '../../support/otherOrigin';

jest.setTimeout(120_000);

describe('promoting a model a Databricks workspace holds', () => {
  let azurite: BlobEmulator;
  let store: ArtifactStore;
  let fake: FakeMlflow;
  let client: MlflowClient;
  let deps: PromoteDeps;
  let dataset: { uri: string; sha256: string };
  let runId: string;
  let folder: Record<string, Buffer>;
  /** Rewrites answers in flight, to play a workspace that lists what it should not. */
  let tamper: ((url: string, body: string) => string) | undefined;

  const stored = () => storedModelPaths(store);
  const activity = (more: { maxModelBytes?: number; databricks?: PromoteDeps['databricks'] | null } = {}) =>
    importModel({
      store,
      tracking: deps.tracking,
      contractOf: async () => contract,
      ...(more.databricks === null ? {} : { databricks: more.databricks ?? deps.databricks! }),
      ...(more.maxModelBytes ? { maxModelBytes: more.maxModelBytes } : {}),
    });
  const input = (candidate: Awaited<ReturnType<typeof resolveMlflowCandidate>>) =>
    importModelActivity.input.parse({
      runId: 'churn-20260301-000000-abcd',
      candidate,
      spec,
      dataset,
      pipeline: { name: 'churn', version: 1 },
    });
  /** A registered version of `churn` whose files are at `location` (what get-download-uri answers). */
  const versionAt = (location: string, source?: string): string => {
    const v = fake.models.get('churn')!.versions;
    v.push({
      ...v[0]!,
      version: String(v.length + 1),
      download_uri: location,
      ...(source ? { source } : {}),
    });
    return `models:/churn/${v.length}`;
  };

  beforeAll(async () => {
    ({ azurite, fake, store, dataset } = await startPromoteStores());
    const fetchVia: Fetch = async (url, init) => {
      const res = await fetch(url, init);
      if (!tamper || !res.ok || !res.headers.get('content-type')?.includes('json')) return res;
      const text = tamper(String(url), await res.text());
      return new Response(text, { status: res.status, headers: res.headers });
    };
    client = new MlflowClient({
      target: { baseUrl: fake.url, auth: { kind: 'bearer', token: 'dapi-workspace' }, flavor: 'databricks' },
      fetch: fetchVia,
      sleep: async () => undefined,
    });
    deps = {
      tracking: client,
      registry: client,
      databricks: { client, signedUrl: fake.signedUrl, sleep: async () => undefined },
    };
    folder = loggedModelFolder();
    runId = fake.logDatabricksModel('/Users/team@contoso.com/churn', folder);
    fake.registerModel('churn', runId); // version 1: download_uri under dbfs:/databricks/mlflow-tracking
    for (const [name, bytes] of Object.entries(folder)) {
      fake.dbfsFiles.set(`/mnt/models/churn/${name}`, bytes);
      fake.volumeFiles.set(`/Volumes/main/ml/models/churn/${name}`, bytes);
    }
    // A file over one DBFS read (1 MB) and in a subfolder: read in chunks, kept in place.
    const big = Buffer.alloc(2_500_000, 7);
    fake.dbfsFiles.set('/mnt/models/churn/extra/weights.bin', big);
    fake.volumeFiles.set('/Volumes/main/ml/models/churn/extra/weights.bin', big);
  });
  afterAll(async () => {
    await Promise.all([azurite?.stop(), fake?.stop()]);
  });
  afterEach(() => {
    tamper = undefined;
    fake.listPageSize = 1000;
    fake.forbidden.length = 0;
    fake.signedHost = 'fakedbx.blob.core.windows.net';
    fake.signedFailures = { n: 0, status: 503 };
    fake.token = undefined;
    fake.failNext(0, 503);
  });

  it('parses the three stores and refuses what it cannot read, naming why', () => {
    expect(parseDatabricksLocation('dbfs:/databricks/mlflow-tracking/12/abc123/artifacts/model/')).toEqual({
      store: 'run',
      root: 'dbfs:/databricks/mlflow-tracking/12/abc123/artifacts/model',
      runId: 'abc123',
      path: 'model',
    });
    expect(parseDatabricksLocation('dbfs:/mnt/models/churn')).toEqual({
      store: 'dbfs',
      root: 'dbfs:/mnt/models/churn',
      path: '/mnt/models/churn',
    });
    for (const v of ['/Volumes/main/ml/models/churn', 'dbfs:/Volumes/main/ml/models/churn'])
      expect(parseDatabricksLocation(v)).toEqual({
        store: 'volume',
        root: '/Volumes/main/ml/models/churn',
        path: '/Volumes/main/ml/models/churn',
      });
    for (const [bad, why] of [
      ['dbfs:/mnt/models/../secrets', /"\.\." segment/],
      ['dbfs:/databricks/mlflow-tracking/1/r/artifacts/../../2', /"\.\." segment/],
      ['/Volumes/main/ml', /Volumes\/<catalog>\/<schema>\/<volume>/],
      ['dbfs://other-profile@databricks/mnt/x', /another workspace/],
      ['dbfs:/databricks/mlflow-registry/abc/models/churn', /registry copy/],
      ['dbfs:/databricks/jobs/1', /access-controlled/],
    ] as const)
      expect(() => parseDatabricksLocation(bad)).toThrow(
        expect.objectContaining({
          code: 'mlflow_artifacts_unreachable',
          message: expect.stringMatching(why),
        }),
      );
    // Signed URIs: Azure Storage over https only; the refusal names the host, never the signature.
    expect(checkSignedUri('https://acct1.blob.core.windows.net/c/p?sig=x', 'f').hostname).toBe(
      'acct1.blob.core.windows.net',
    );
    for (const bad of [
      'http://acct1.blob.core.windows.net/c/p?sig=secret',
      'https://acct1.blob.core.windows.net.evil.example/c?sig=secret',
      'https://user@acct1.dfs.core.windows.net/c?sig=secret',
      'https://169.254.169.254/metadata?sig=secret',
    ]) {
      const thrown = (() => {
        try {
          checkSignedUri(bad, 'model/MLmodel');
        } catch (err) {
          return err as Error & { code: string };
        }
        throw new Error(`accepted ${bad}`);
      })();
      expect(thrown.code).toBe('mlflow_signed_uri_refused');
      expect(thrown.message).not.toContain('secret');
    }
  });

  it('run artifacts: resolved through artifacts/list, imported through signed URIs without the token', async () => {
    const exp = fake.runs.get(runId)!.info.experiment_id;
    const root = `dbfs:/databricks/mlflow-tracking/${exp}/${runId}/artifacts/model`;
    fake.token = 'dapi-workspace';
    fake.calls.length = 0;
    const candidate = await resolveMlflowCandidate(deps, `runs:/${runId}/model`);
    expect(candidate).toEqual({ uri: `runs:/${runId}/model`, artifactPath: root, runId });
    expect(fake.okCalls()).toEqual(['GET runs/get', 'GET artifacts/list']);
    expect(fake.calls[1]!.body).toEqual({ run_id: runId, path: 'model' });
    // The registered version (its download URI is the run's folder) resolves to the same place.
    await expect(resolveMlflowCandidate(deps, 'models:/churn/1')).resolves.toMatchObject({
      artifactPath: root,
    });

    fake.listPageSize = 2; // listings and credentials both page
    fake.calls.length = 0;
    const result = await activity()(input(candidate));
    const names = Object.keys(folder).sort();
    expect(fake.okCalls().filter((c) => c.startsWith('GET artifacts/list'))).toHaveLength(2);
    const creds = fake.calls.filter((c) => c.path === 'artifacts/credentials-for-read');
    // One batch for the folder's files, in pages of two: never one request per file.
    expect(creds.map((c) => c.body)).toEqual([
      { run_id: runId, path: names.map((n) => `model/${n}`) },
      { run_id: runId, path: names.map((n) => `model/${n}`), page_token: '2' },
    ]);
    const signed = fake.calls.filter((c) => c.path.startsWith('signed/'));
    expect(signed.map((c) => c.path).sort()).toEqual(
      names.map((n) => `signed/${exp}/${runId}/artifacts/model/${n}`),
    );
    expect(signed.every((c) => c.status === 200 && c.authorization === undefined)).toBe(true);
    expect(
      fake.calls
        .filter((c) => !c.path.startsWith('signed/'))
        .every((c) => c.authorization === 'Bearer dapi-workspace'),
    ).toBe(true);
    expect(result).toMatchObject({
      algorithm: 'mlflow',
      artifact: { format: 'mlflow', flavor: 'onnx', classes: ['no', 'yes'] },
    });
    const opened = await openModelFolder(store, result.modelUri, result.modelDigest);
    expect(opened.manifest.map((f) => f.path).sort()).toEqual(names);
  });

  it("a workspace registry copy is read through the version's source run", async () => {
    const exp = fake.runs.get(runId)!.info.experiment_id;
    const root = `dbfs:/databricks/mlflow-tracking/${exp}/${runId}/artifacts/model`;
    const registryCopy = 'dbfs:/databricks/mlflow-registry/0123abcd/models/churn';
    await expect(resolveMlflowCandidate(deps, versionAt(registryCopy, root))).resolves.toMatchObject({
      artifactPath: root,
    });
    await expect(
      resolveMlflowCandidate(deps, versionAt(registryCopy, `runs:/${runId}/model`)),
    ).resolves.toMatchObject({
      artifactPath: root,
    });
    const other = await refusal(resolveMlflowCandidate(deps, versionAt(registryCopy, 's3://bucket/model')));
    expect(other).toMatchObject({
      code: 'mlflow_artifacts_unreachable',
      status: 400,
      field: 'candidate.mlflow',
    });
    expect(other.message).toMatch(/registry copy/);
  });

  it('dbfs:/ paths: listed and read in 1 MB chunks through the DBFS API, through an outage', async () => {
    const uri = versionAt('dbfs:/mnt/models/churn');
    fake.calls.length = 0;
    const candidate = await resolveMlflowCandidate(deps, uri);
    expect(candidate).toMatchObject({ artifactPath: 'dbfs:/mnt/models/churn', version: expect.any(String) });
    expect(fake.okCalls().at(-1)).toBe('GET dbfs/list');
    expect(fake.calls.at(-1)!.body).toEqual({ path: '/mnt/models/churn' });

    fake.calls.length = 0;
    fake.failNext(2, 503); // retried by the client's bounded backoff
    const result = await activity()(input(candidate));
    const reads = fake.calls.filter((c) => c.path === 'dbfs/read' && c.status === 200);
    const weights = reads.filter((c) => c.body.path === '/mnt/models/churn/extra/weights.bin');
    expect(weights.map((c) => [c.body.offset, c.body.length])).toEqual([
      ['0', '1048576'],
      ['1048576', '1048576'],
      ['2097152', '1048576'],
    ]);
    expect(fake.calls.filter((c) => c.status === 503)).toHaveLength(2);
    const opened = await openModelFolder(store, result.modelUri, result.modelDigest);
    expect(opened.manifest.map((f) => f.path).sort()).toEqual(
      [...Object.keys(folder), 'extra/weights.bin'].sort(),
    );
    expect(opened.manifest.find((f) => f.path === 'extra/weights.bin')!.bytes).toBe(2_500_000);
  });

  it('Unity Catalog volumes: listed in pages and downloaded through the Files API', async () => {
    for (const location of ['/Volumes/main/ml/models/churn', 'dbfs:/Volumes/main/ml/models/churn/']) {
      fake.listPageSize = 2;
      fake.calls.length = 0;
      const candidate = await resolveMlflowCandidate(deps, versionAt(location));
      expect(candidate.artifactPath).toBe('/Volumes/main/ml/models/churn');
      expect(fake.okCalls().filter((c) => c.startsWith('GET fs/directories'))).toEqual([
        'GET fs/directories/Volumes/main/ml/models/churn',
        'GET fs/directories/Volumes/main/ml/models/churn',
      ]);
      fake.calls.length = 0;
      const dir = await mkdtemp(path.join(tmpdir(), 'sluice-volume-'));
      try {
        const reader = databricksArtifactReader(deps.databricks!, candidate.artifactPath);
        await expect(
          downloadArtifactFolder(reader, candidate.artifactPath, dir, { maxBytes: 10_000_000 }),
        ).resolves.toEqual({
          files: Object.keys(folder).length + 1,
          bytes: Object.values(folder).reduce((n, b) => n + b.length, 0) + 2_500_000,
        });
        expect(await readFile(path.join(dir, 'MLmodel'))).toEqual(folder.MLmodel);
        expect(
          fake
            .okCalls()
            .filter((c) => c.startsWith('GET fs/files'))
            .sort(),
        ).toEqual(
          [...Object.keys(folder), 'extra/weights.bin']
            .map((n) => `GET fs/files/Volumes/main/ml/models/churn/${n}`)
            .sort(),
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  it('refuses at start, with a named 400: not Databricks, unknown and forbidden paths, escaping entries', async () => {
    const cases: [string, string, RegExp][] = [
      [
        versionAt('dbfs:/mnt/models/nobody'),
        'mlflow_model_not_found',
        /dbfs:\/mnt\/models\/nobody.*RESOURCE_DOES_NOT_EXIST/,
      ],
      [
        versionAt('/Volumes/main/ml/models/nobody'),
        'mlflow_model_not_found',
        /Volumes\/main\/ml\/models\/nobody.*NOT_FOUND/,
      ],
      [versionAt('dbfs:/mnt/../etc/model'), 'mlflow_artifacts_unreachable', /"\.\." segment/],
      [versionAt('dbfs:/databricks/jobs/1/model'), 'mlflow_artifacts_unreachable', /access-controlled/],
    ];
    fake.forbidden.push('/Volumes/main/ml/secret');
    fake.volumeFiles.set('/Volumes/main/ml/secret/model/MLmodel', Buffer.from('x'));
    cases.push([versionAt('/Volumes/main/ml/secret/model'), 'mlflow_artifacts_forbidden', /READ VOLUME/]);
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
    // With a tracking server that is not the workspace, its stores stay refused, saying why.
    const plain = await refusal(
      resolveMlflowCandidate({ ...deps, databricks: undefined }, versionAt('/Volumes/main/ml/models/churn')),
    );
    expect(plain).toMatchObject({ code: 'mlflow_artifacts_unreachable', status: 400 });
    expect(plain.message).toMatch(/Unity Catalog volume.*only when MLFLOW_TRACKING_URI is databricks/);
    // A listing naming an entry outside the folder listed is refused before anything is read.
    tamper = (url, body) =>
      url.includes('/artifacts/list') ? body.replace('"model/MLmodel"', '"other/MLmodel"') : body;
    const escaped = await refusal(resolveMlflowCandidate(deps, `runs:/${runId}/model`));
    expect(escaped).toMatchObject({ code: 'mlflow_artifact_path_invalid', status: 400 });
    tamper = (url, body) =>
      url.includes('/dbfs/list') ? body.replace('/mnt/models/churn/MLmodel', '/mnt/models/churn/../x') : body;
    const dotted = await refusal(resolveMlflowCandidate(deps, versionAt('dbfs:/mnt/models/churn')));
    expect(dotted).toMatchObject({ code: 'mlflow_artifact_path_invalid', status: 400 });
  });

  it('a signed URI answering a redirect to another host: refused, naming the hosts, never followed', async () => {
    const candidate = await resolveMlflowCandidate(deps, `runs:/${runId}/model`);
    const before = await stored();
    // Where the redirect points: a server of its own (another origin) that counts what reaches it.
    const other = await startOtherOrigin(
      200,
      { 'content-type': 'application/octet-stream' },
      'not the model',
    );
    const { host: otherHost, reached } = other;
    fake.signedRedirect = `http://${otherHost}`;
    try {
      fake.calls.length = 0;
      const moved = await refusal(activity()(input(candidate)));
      expect(moved).toMatchObject({ name: 'NonRetriableError', code: 'mlflow_storage_redirect_refused' });
      expect(moved.message).toContain('on fakedbx.blob.core.windows.net answered 302');
      expect(moved.message).toContain(`a redirect to ${otherHost}`);
      expect(moved.message).not.toMatch(/sig=|fake-read-signature|\/signed\//);
      // Refused at the first file, once: a redirect is not retried.
      expect(fake.calls.filter((c) => c.path.startsWith('signed/'))).toHaveLength(1);
      expect(reached).toEqual([]);
    } finally {
      fake.signedRedirect = undefined;
      await other.close();
    }
    expect(await stored()).toEqual(before);
  });

  it('signed URI faults: retried with a bound, an expired SAS renewed once, other hosts refused; nothing stored', async () => {
    const candidate = await resolveMlflowCandidate(deps, `runs:/${runId}/model`);
    // An expired SAS: a fresh credential asked for, once.
    fake.calls.length = 0;
    fake.signedFailures = { n: 1, status: 403 };
    const first = await activity()(input(candidate));
    expect(fake.calls.filter((c) => c.path === 'artifacts/credentials-for-read').length).toBe(2);
    // Storage answering 503 twice: retried within the bound, the same result.
    fake.calls.length = 0;
    fake.signedFailures = { n: 2, status: 503 };
    await expect(activity()(input(candidate))).resolves.toEqual(first);
    expect(fake.calls.filter((c) => c.path.startsWith('signed/') && c.status === 503)).toHaveLength(2);
    const afterSuccess = await stored();

    // Storage down for good: a TransientError after 4 attempts, no signature in the message.
    fake.calls.length = 0;
    fake.signedFailures = { n: 100, status: 503 };
    const down = await refusal(activity()(input(candidate)));
    expect(down).toMatchObject({ name: 'TransientError', code: 'mlflow_unavailable' });
    expect(down.message).toMatch(/fakedbx\.blob\.core\.windows\.net answered 503 \(4 attempts\)/);
    expect(down.message).not.toMatch(/sig=|fake-read-signature/);
    expect(fake.calls.filter((c) => c.path.startsWith('signed/'))).toHaveLength(4);
    fake.signedFailures = { n: 0, status: 503 };

    // A workspace handing out a URI off Azure Storage: refused before it is fetched.
    fake.signedHost = 'storage.evil.example';
    fake.calls.length = 0;
    const off = await refusal(activity()(input(candidate)));
    expect(off).toMatchObject({ code: 'mlflow_signed_uri_refused' });
    expect(off.message).toContain('storage.evil.example');
    expect(off.message).not.toMatch(/sig=|fake-read-signature/);
    expect(fake.calls.some((c) => c.path.startsWith('signed/'))).toBe(false);
    fake.signedHost = 'fakedbx.blob.core.windows.net';

    // The tracking server changed under the run: refused, not read elsewhere.
    await expect(activity({ databricks: null })(input(candidate))).rejects.toMatchObject({
      code: 'mlflow_artifacts_unreachable',
    });
    // Over the size limit, and over the file-count limit (the same limits as every promote).
    await expect(activity({ maxModelBytes: 1_000 })(input(candidate))).rejects.toMatchObject({
      code: 'model_too_large',
    });
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-dbfs-'));
    try {
      const reader = databricksArtifactReader(deps.databricks!, 'dbfs:/mnt/models/churn');
      await expect(
        downloadArtifactFolder(reader, 'dbfs:/mnt/models/churn', dir, { maxBytes: 10_000_000, maxFiles: 2 }),
      ).rejects.toMatchObject({ code: 'model_output_invalid' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // The failures stored nothing.
    expect(await stored()).toEqual(afterSuccess);
  });
});
