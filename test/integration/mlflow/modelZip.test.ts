/**
 * `GET /api/models/{name}/versions/{v}/mlflow` on Azurite and the Cosmos emulator: a folder version
 * zipped as stored (Sluice's sidecar left out), a legacy JSON version converted by the built-in
 * ONNX export, both read back by Python's own zipfile (CRCs checked); the same version zips to the
 * same bytes; a tampered file breaks the stream instead of sending other bytes; unknown versions
 * are 404, a malformed one 400.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HttpRequest } from '@azure/functions';
import { createHash } from 'node:crypto';
import { modelMlflowZip } from '../../../functions/modelMlflowZip';
import { MODEL_FOLDER_PREFIX, storeModelFiles } from '../../../lib/mlmodel/blobFolder';
import { ModelRegistry } from '../../../lib/registry/registry';
import resources from '../../../lib/resources.json';
import { ArtifactStore } from '../../../lib/storage/blob';
import { builtInModelFolder } from '../../../lib/training/models/mlflowFolder';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticRegression } from '../../../lib/training/synthetic';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startAzuriteBlob, startCosmos } from '../../support/emulators';

jest.setTimeout(120_000);

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function request(name: string, v: string): HttpRequest {
  return {
    params: { name, v },
    headers: new Headers(),
    query: new URLSearchParams(),
  } as unknown as HttpRequest;
}

async function bodyOf(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Python's zipfile: each entry's name, size and SHA-256, after testzip() checked every CRC. */
function pythonRead(zip: Buffer): Record<string, { bytes: number; sha256: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-zip-'));
  try {
    const file = path.join(dir, 'm.zip');
    writeFileSync(file, zip);
    const out = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        [
          'import hashlib, json, sys, zipfile',
          'z = zipfile.ZipFile(sys.argv[1])',
          'assert z.testzip() is None',
          'print(json.dumps({i.filename: {"bytes": i.file_size, "sha256": hashlib.sha256(z.read(i)).hexdigest()} for i in z.infolist()}))',
        ].join('\n'),
        file,
      ],
      { encoding: 'utf8' },
    );
    return JSON.parse(out) as Record<string, { bytes: number; sha256: string }>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the MLflow model folder download', () => {
  let azurite: BlobEmulator;
  let cosmos: CosmosEmulator;
  let store: ArtifactStore;
  let registry: ModelRegistry;
  let handler: ReturnType<typeof modelMlflowZip>;
  let json: Buffer;
  let folderDigest: string;

  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzuriteBlob(), startCosmos()]);
    store = ArtifactStore.fromConnectionString(azurite.connectionString);
    await store.ensureContainers();
    registry = new ModelRegistry(await cosmosContainer(cosmos, 'models'));
    handler = modelMlflowZip({ registry, artifacts: store });
    const data = syntheticRegression({ rows: 400, features: 3, seed: 2 });
    const features = data.columns.map((c) => c.name).filter((n) => n !== 'y');
    const model = trainModel(data, parseTrainingSpec({ algorithm: 'ridge', target: 'y', features })).model;
    json = Buffer.from(JSON.stringify(model), 'utf8');
    const folder = builtInModelFolder(json);
    // A stored folder with Sluice's sidecar, as a wide user model has it.
    const stored = await storeModelFiles(store, [
      ...folder.files,
      { path: 'sluice-artifact.json', bytes: Buffer.from(JSON.stringify(folder.artifact)) },
    ]);
    folderDigest = stored.digest;
    const common = { datasetDigest: 'd'.repeat(64), metrics: {}, trainingSpec: {}, runId: 'run-1' };
    await registry.registerVersion({
      ...common,
      modelName: 'wages',
      modelDigest: stored.digest,
      artifactUri: stored.uri,
      artifact: folder.artifact,
      algorithm: 'ridge',
    });
    const legacy = await store.putContentAddressed(resources.blobContainers.models, json, {
      contentType: 'application/json',
    });
    await registry.registerVersion({
      ...common,
      modelName: 'wages',
      modelDigest: legacy.sha256,
      artifactUri: legacy.uri,
      algorithm: 'ridge',
      runId: 'run-0',
    });
  });
  afterAll(async () => {
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  it('zips a stored folder as registered, without the sidecar, reproducibly', async () => {
    const res = await handler(request('wages', '1'));
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'content-type': 'application/zip',
      'content-disposition': 'attachment; filename="wages-v1-mlflow.zip"',
      'x-sluice-model-digest': folderDigest,
      'x-sluice-export': 'stored',
    });
    const zip = await bodyOf(res.body);
    const files = builtInModelFolder(json).files;
    expect(pythonRead(zip)).toEqual(
      Object.fromEntries(
        files
          .map((f) => [f.path, { bytes: f.bytes.byteLength, sha256: sha256(f.bytes) }] as const)
          .sort(([a], [b]) => a.localeCompare(b)),
      ),
    );
    expect(await bodyOf((await handler(request('wages', '1'))).body)).toEqual(zip);
  });

  it('converts a legacy JSON version with the built-in ONNX export', async () => {
    const res = await handler(request('wages', '2'));
    expect(res.headers).toMatchObject({
      'x-sluice-export': 'converted',
      'x-sluice-model-digest': sha256(json),
    });
    const read = pythonRead(await bodyOf(res.body));
    expect(Object.keys(read).sort()).toEqual(['MLmodel', 'model.json', 'model.onnx']);
    expect(read['model.json']!.sha256).toBe(sha256(json));
  });

  it('answers 404 for an unknown model or version and 400 for a malformed version', async () => {
    expect((await handler(request('wages', '9'))).status).toBe(404);
    expect((await handler(request('nobody', '1'))).status).toBe(404);
    const bad = await handler(request('wages', 'latest'));
    expect(bad.status).toBe(400);
  });

  it('breaks the stream rather than send a file that no longer matches its manifest', async () => {
    await store.put(
      {
        container: resources.blobContainers.models,
        path: `${MODEL_FOLDER_PREFIX}/${folderDigest}/model.onnx`,
      },
      Buffer.from('not the model'),
      { contentType: 'application/octet-stream', condition: 'overwrite' },
    );
    const res = await handler(request('wages', '1'));
    await expect(bodyOf(res.body)).rejects.toThrow(/model\.onnx/);
  });
});
