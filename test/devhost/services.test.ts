import { createServer, type Server } from 'node:net';
import { request } from 'node:http';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  generateAccountSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { TableClient } from '@azure/data-tables';
import { CosmosClient } from '@azure/cosmos';
import { startServices, PortInUseError, type RunningServices } from '../../devhost/services';
import { startAzurite } from '../../devhost/services/azurite';
import { memoryLog } from './servicesLog';

function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

/** One HTTP exchange, with the whole answer (status and body text). */
function exchange(
  url: string,
  init: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.once('error', reject);
    req.end(init.body);
  });
}

/** An account SAS for the Queue service, signed with the emulator account key of the connection string. */
function queueSas(connectionString: string): string {
  const setting = (name: string) => new RegExp(`${name}=([^;]+)`).exec(connectionString)?.[1] ?? '';
  const credential = new StorageSharedKeyCredential(setting('AccountName'), setting('AccountKey'));
  return generateAccountSASQueryParameters(
    {
      services: AccountSASServices.parse('q').toString(),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
      permissions: AccountSASPermissions.parse('rwdlacup'),
      expiresOn: new Date(Date.now() + 3_600_000),
    },
    credential,
  ).toString();
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// Azurite takes seconds to load, more on a busy machine.
jest.setTimeout(120_000);

describe('embedded services in memory', () => {
  let services: RunningServices;
  const log = memoryLog();

  let cosmosPort: number;

  beforeAll(async () => {
    // A fixed port for one service (the others free) exercises both kinds of port choice.
    const free = await occupy();
    cosmosPort = free.port;
    await new Promise((r) => free.server.close(r));
    services = await startServices({ dataDir: null, ports: { cosmos: cosmosPort }, log });
  });
  afterAll(async () => {
    await services?.stop();
  });

  it('gives the app settings that point at loopback emulators with explicit endpoints', () => {
    const cs = services.env.AzureWebJobsStorage ?? '';
    expect(services.env.ARTIFACT_STORAGE_CONNECTION).toBe(cs);
    expect(services.storageConnectionString).toBe(cs);
    expect(cs).toContain('AccountName=devstoreaccount1');
    expect(cs).toContain(`BlobEndpoint=http://127.0.0.1:${services.ports.blob}/devstoreaccount1`);
    expect(cs).toContain(`QueueEndpoint=http://127.0.0.1:${services.ports.queue}/devstoreaccount1`);
    expect(cs).toContain(`TableEndpoint=http://127.0.0.1:${services.ports.table}/devstoreaccount1`);
    expect(services.env.COSMOS_ENDPOINT).toBe(`http://127.0.0.1:${services.ports.cosmos}/`);
    expect(services.env.COSMOS_KEY).toBe(services.cosmosKey);
    expect(services.dataDir).toBeNull();
    expect(new Set(Object.values(services.ports)).size).toBe(4);
    expect(services.ports.cosmos).toBe(cosmosPort);
  });

  it('serves Blob storage', async () => {
    const blobs = BlobServiceClient.fromConnectionString(services.storageConnectionString);
    const container = blobs.getContainerClient('smoke');
    await container.createIfNotExists();
    await container.getBlockBlobClient('a.txt').upload('hello', 5);
    const body = await container.getBlockBlobClient('a.txt').downloadToBuffer();
    expect(body.toString()).toBe('hello');
  });

  it('serves Table storage', async () => {
    const table = TableClient.fromConnectionString(services.storageConnectionString, 'smoke', {
      allowInsecureConnection: true,
    });
    await table.createTable();
    await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 42 });
    const entity = await table.getEntity<{ value: number }>('p', 'r');
    expect(entity.value).toBe(42);
  });

  it('serves Queue storage', async () => {
    const base = services.queueEndpoint.replace(/\/+$/, '');
    // Without a signature the queue service answers, and refuses.
    const anonymous = await exchange(`${base}?comp=list`);
    expect(anonymous.status).toBe(403);
    expect(anonymous.body).toContain('<Code>AuthenticationFailed</Code>');
    // With a signed request a message goes through a queue and comes back.
    const sas = queueSas(services.storageConnectionString);
    expect(await exchange(`${base}/smoke?${sas}`, { method: 'PUT' })).toMatchObject({ status: 201 });
    const sent = await exchange(`${base}/smoke/messages?${sas}`, {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: '<QueueMessage><MessageText>hello</MessageText></QueueMessage>',
    });
    expect(sent.status).toBe(201);
    const received = await exchange(`${base}/smoke/messages?${sas}`);
    expect(received.status).toBe(200);
    expect(received.body).toContain('<MessageText>hello</MessageText>');
  });

  it('serves the Cosmos DB emulator over plain HTTP', async () => {
    const client = new CosmosClient({
      endpoint: services.cosmosEndpoint,
      key: services.cosmosKey,
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    const { database } = await client.databases.createIfNotExists({ id: 'smoke' });
    const { container } = await database.containers.createIfNotExists({
      id: 'things',
      partitionKey: { paths: ['/kind'] },
    });
    await container.items.create({ id: '1', kind: 'k', n: 1 });
    const { resource } = await container.item('1', 'k').read<{ n: number }>();
    expect(resource?.n).toBe(1);
    client.dispose();
  });

  // Last in this block: it stops the shared instance (afterAll's stop() is then a no-op).
  it('stops the Azurite child and frees the ports on stop()', async () => {
    const pid = Number(log.lines.find((l) => l.message === 'Azurite is ready')?.fields?.pid);
    expect(isAlive(pid)).toBe(true);
    await services.stop();
    expect(isAlive(pid)).toBe(false);
    await expect(httpStatus(`${services.blobEndpoint}?comp=list`)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    await expect(httpStatus(services.cosmosEndpoint)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('ports', () => {
  const log = memoryLog();

  it('names the port and the devhost flag when a fixed port is taken', async () => {
    const taken = await occupy();
    try {
      const err = await startServices({ dataDir: null, ports: { table: taken.port }, log }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as PortInUseError).port).toBe(taken.port);
      expect((err as Error).message).toContain(String(taken.port));
      expect((err as Error).message).toContain('--table-port');
    } finally {
      taken.server.close();
    }
  });

  it('reports every taken port at once', async () => {
    const a = await occupy();
    const b = await occupy();
    try {
      const err = (await startServices({ dataDir: null, ports: { blob: a.port, cosmos: b.port }, log }).catch(
        (e: unknown) => e,
      )) as Error;
      expect(err.message).toContain(`${a.port}`);
      expect(err.message).toContain('--blob-port');
      expect(err.message).toContain(`${b.port}`);
      expect(err.message).toContain('--cosmos-port');
    } finally {
      a.server.close();
      b.server.close();
    }
  });

  it('maps Azurite failing to bind (a port taken after the check) to the same error', async () => {
    const taken = await occupy();
    try {
      const err = await startAzurite({ location: null, ports: { queue: taken.port }, log }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as PortInUseError).service).toBe('queue');
      expect((err as Error).message).toContain('--queue-port');
    } finally {
      taken.server.close();
    }
  });
});
