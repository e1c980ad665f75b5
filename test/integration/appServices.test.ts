/**
 * The app's one per-process memo of its services (app/services.ts): every trigger and activity of
 * the process gets the same objects, and a build that failed (bad settings, an emulator down) is
 * not kept, so the next call builds again — as the lib/*\/deps.ts singletons it replaces did.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HttpRequest } from '@azure/functions';
import { getBuiltServices, getServices, withServices } from '../../app/services';
import { getPipeline } from '../../functions/getPipeline';
import { listPipelines } from '../../functions/listPipelines';
import { putPipeline } from '../../functions/putPipeline';
import { loadConfig } from '../../lib/config';
import type { Services } from '../../lib/services';
import { createServices } from '../../lib/services';
import type { BlobEmulator, CosmosEmulator } from '../support/emulators';
import { startAzuriteBlob, startCosmos } from '../support/emulators';

jest.setTimeout(120_000);

const root = path.resolve(__dirname, '..', '..');

describe('app services: one set per process, a failure is not kept', () => {
  let azurite: BlobEmulator;
  let cosmos: CosmosEmulator;
  const saved = { ...process.env };
  const settings = [
    'COSMOS_ENDPOINT',
    'COSMOS_KEY',
    'ARTIFACT_STORAGE_CONNECTION',
    'ARTIFACT_STORAGE_ACCOUNT_URL',
  ];

  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzuriteBlob(), startCosmos()]);
  });
  afterAll(async () => {
    process.env = saved;
    (await getServices().catch(() => undefined))?.cosmos.client.dispose();
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  it('reports bad settings, then builds once the settings are fixed, and hands every caller the same services', async () => {
    for (const name of settings) delete process.env[name];
    await expect(getServices()).rejects.toThrow(/COSMOS_ENDPOINT/);
    await expect(getBuiltServices()).rejects.toThrow(/COSMOS_ENDPOINT/);

    process.env.COSMOS_ENDPOINT = cosmos.endpoint;
    process.env.COSMOS_KEY = cosmos.key;
    process.env.ARTIFACT_STORAGE_CONNECTION = azurite.connectionString;
    const services = await getServices();
    expect(await getServices()).toBe(services);
    expect(await getBuiltServices()).toBe(services);
    // Prepared: the emulators now hold the app's database and containers.
    expect(await services.artifacts.containerClient('datasets').exists()).toBe(true);
    await expect(services.pipelines.list()).resolves.toEqual([]);
    // Handlers made from the services get this same set.
    const seen = await withServices((s) => async () => s)();
    expect(seen).toBe(services);
  });
});

describe('HTTP functions made from services built by createServices', () => {
  let azurite: BlobEmulator;
  let cosmos: CosmosEmulator;
  let services: Services;

  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzuriteBlob(), startCosmos()]);
    services = await createServices(
      loadConfig({
        COSMOS_ENDPOINT: cosmos.endpoint,
        COSMOS_KEY: cosmos.key,
        ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
      }),
    );
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  it('stores a pipeline with PUT and reads it back with GET and the list, through the same stores', async () => {
    const definition = JSON.parse(
      readFileSync(path.join(root, 'examples', 'pipelines', 'wages.json'), 'utf8'),
    );
    const put = await putPipeline(services)(
      new HttpRequest({
        method: 'PUT',
        url: 'http://localhost:7071/api/pipelines/wages',
        params: { name: 'wages' },
        headers: { 'content-type': 'application/json' },
        body: { string: JSON.stringify(definition) },
      }),
    );
    expect(put).toMatchObject({ status: 201, jsonBody: { name: 'wages', version: 1 } });
    const got = await getPipeline(services)(
      new HttpRequest({
        method: 'GET',
        url: 'http://localhost:7071/api/pipelines/wages',
        params: { name: 'wages' },
      }),
    );
    expect(got.jsonBody).toMatchObject({
      name: 'wages',
      version: 1,
      versions: [expect.objectContaining({ version: 1 })],
    });
    const list = await listPipelines(services)();
    expect((list.jsonBody as { name: string }[]).map((p) => p.name)).toEqual(['wages']);
  });
});
