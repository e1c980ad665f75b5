import { performance } from 'node:perf_hooks';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { startServices, type RunningServices } from '../../devhost/services';
import { startCosmosEmulator } from '../../devhost/services/cosmos';
import { createHealthHandler, healthHandler } from '../../functions/health';
import { loadConfig, type Config } from '../../lib/config';
import {
  ArtifactStore,
  CosmosStore,
  storageProbes,
  type Dependency,
  type Probe,
  type Probes,
} from '../../lib/storage';
import resources from '../../lib/resources.json';
import { memoryLog } from '../devhost/servicesLog';

const get = () => new HttpRequest({ method: 'GET', url: 'http://localhost:7071/api/health' });
const logged: string[] = [];
const context = () =>
  new InvocationContext({
    functionName: 'health',
    invocationId: 'test',
    logHandler: (level, ...args) => logged.push(`${level}: ${args.map(String).join(' ')}`),
  });

interface Body {
  status: string;
  failing: string[];
  detail?: string;
  checks: Record<string, { status: string; latencyMs: number; code?: string }>;
}
const body = (response: HttpResponseInit) => response.jsonBody as Body;

// Azurite takes seconds to load, more on a busy machine.
jest.setTimeout(120_000);

describe('GET /api/health', () => {
  let services: RunningServices;
  let config: Config;
  const cosmosStores: CosmosStore[] = [];
  const probesFor = (c: Config, ensureLocal = false) => {
    const cosmos = CosmosStore.fromConfig(c);
    cosmosStores.push(cosmos);
    return storageProbes(c, { artifacts: ArtifactStore.fromConfig(c), cosmos, ensureLocal });
  };

  beforeAll(async () => {
    services = await startServices({ dataDir: null, log: memoryLog() });
    config = loadConfig(services.env);
    await ArtifactStore.fromConfig(config).ensureContainers();
    const cosmos = CosmosStore.fromConfig(config);
    await cosmos.ensure();
    cosmos.client.dispose();
  });
  afterAll(async () => {
    for (const c of cosmosStores) c.client.dispose();
    await services?.stop();
  });

  it('answers 200 with the state and latency of Blob, Table and Cosmos', async () => {
    // Each real probe is timed from the inside, and the whole request from the outside: a reported
    // latency must be that dependency's own round trip (at least the time its probe took, at most
    // the time the request took), not a constant or another dependency's figure. No threshold on
    // how fast anything is: only how the three measurements relate.
    const probeMs: Record<string, number> = {};
    const timed = (probes: Probes): Probes => {
      const wrap =
        (d: Dependency): Probe =>
        async (signal) => {
          const started = performance.now();
          try {
            await probes[d](signal);
          } finally {
            probeMs[d] = performance.now() - started;
          }
        };
      return { blob: wrap('blob'), table: wrap('table'), cosmos: wrap('cosmos') };
    };
    const started = performance.now();
    const response = await createHealthHandler(() => timed(probesFor(config)))(get(), context());
    const requestMs = performance.now() - started;
    expect(response.status).toBe(200);
    expect(response.headers).toMatchObject({ 'cache-control': 'no-store' });
    const { status, checks, failing } = body(response);
    expect(status).toBe('healthy');
    expect(failing).toEqual([]);
    for (const dependency of ['blob', 'table', 'cosmos']) {
      expect(checks[dependency]).toMatchObject({ status: 'up' });
      const { latencyMs } = checks[dependency]!;
      // Milliseconds with one decimal, so ±0.05 of rounding either way.
      expect(Math.round(latencyMs * 10)).toBeCloseTo(latencyMs * 10, 6);
      expect(latencyMs).toBeGreaterThanOrEqual(probeMs[dependency]! - 0.05);
      expect(latencyMs).toBeLessThanOrEqual(requestMs + 0.05);
    }
  });

  it('answers 503 naming Cosmos when its emulator stops', async () => {
    const cosmos = await startCosmosEmulator({ location: null, log: memoryLog() });
    const own = loadConfig({ ...services.env, COSMOS_ENDPOINT: cosmos.endpoint });
    const store = CosmosStore.fromConfig(own);
    cosmosStores.push(store);
    await store.ensure();
    const handler = createHealthHandler(
      () => storageProbes(own, { artifacts: ArtifactStore.fromConfig(own), cosmos: store }),
      {
        timeoutMs: 3000,
      },
    );
    expect((await handler(get(), context())).status).toBe(200);

    await cosmos.stop();
    const response = await handler(get(), context());
    expect(response.status).toBe(503);
    const report = body(response);
    expect(report.failing).toEqual(['cosmos']);
    expect(report.checks.blob?.status).toBe('up');
    expect(report.checks.table?.status).toBe('up');
    expect(report.checks.cosmos).toMatchObject({ status: 'down', code: 'COSMOS_UNAVAILABLE' });
    expect(report.detail).toMatch(/^unhealthy: cosmos: /);
    expect(logged.at(-1)).toMatch(/^warning: health: unhealthy: cosmos: COSMOS_UNAVAILABLE/);
  });

  it('answers 503 naming Table storage when it cannot be reached', async () => {
    const broken = loadConfig({
      ...services.env,
      AzureWebJobsStorage: services.storageConnectionString.replace(`:${services.ports.table}/`, ':1/'),
    });
    const response = await createHealthHandler(() => probesFor(broken), { timeoutMs: 2000 })(
      get(),
      context(),
    );
    expect(response.status).toBe(503);
    expect(body(response).failing).toEqual(['table']);
    expect(body(response).detail).toContain('table');
  });

  it('answers 503 naming Blob storage when the artifact containers are missing', async () => {
    const artifacts = ArtifactStore.fromConfig(config);
    const first = Object.values(resources.blobContainers)[0]!;
    await artifacts.containerClient(first).delete();
    const response = await createHealthHandler(() => probesFor(config))(get(), context());
    expect(response.status).toBe(503);
    expect(body(response).failing).toEqual(['blob']);
    expect(body(response).checks.blob).toMatchObject({ status: 'down', code: 'BLOB_NOT_FOUND' });

    // Against the emulators, the default probes create what the app needs, as its first request would.
    const healed = await createHealthHandler(() => probesFor(config, true))(get(), context());
    expect(healed.status).toBe(200);
    expect(await artifacts.containerClient(first).exists()).toBe(true);
  });

  it('answers 503 naming the configuration when settings are invalid', async () => {
    // The app's own handler, on the services it builds from the environment: no Cosmos endpoint.
    const saved = process.env.COSMOS_ENDPOINT;
    delete process.env.COSMOS_ENDPOINT;
    let response: HttpResponseInit;
    try {
      response = await healthHandler(get(), context());
    } finally {
      if (saved !== undefined) process.env.COSMOS_ENDPOINT = saved;
    }
    expect(response.status).toBe(503);
    expect(response.jsonBody).toMatchObject({ status: 'unhealthy', failing: ['config'] });
    expect((response.jsonBody as { detail: string }).detail).toContain('COSMOS_ENDPOINT');
  });
});
