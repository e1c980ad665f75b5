/**
 * What a remote job can write with the access Sluice gives it: only its own output container.
 * The SAS is signed as in production (Azurite takes account-key SAS; Azure gets a user-delegation
 * SAS of the same scope and permissions) and every request below goes to Azurite with the SAS
 * alone, so the storage service, not Sluice, refuses what is outside the grant.
 */
import type { TokenCredential } from '@azure/identity';
import type { ServiceGetUserDelegationKeyResponse } from '@azure/storage-blob';
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { NonRetriableError, TransientError } from '../../../lib/errors';
import { ArtifactStore } from '../../../lib/storage';
import {
  MAX_SAS_SECONDS,
  grantJobOutput,
  jobOutputContainer,
} from '../../../lib/training/userJob/outputGrant';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';

jest.setTimeout(60_000);

let azurite: BlobEmulator;
let store: ArtifactStore;

beforeAll(async () => {
  azurite = await startAzuriteBlob();
  store = ArtifactStore.fromConnectionString(azurite.connectionString);
  await store.ensureContainers();
});
afterAll(async () => {
  await azurite?.stop();
});

/** Put Blob with nothing but the SAS (no key, no token), as the job's upload is. */
const putWithSas = async (container: string, path: string, sas: string, body = 'x') => {
  const res = await fetch(`${store.service.url}/${container}/${path}?${sas}`, {
    method: 'PUT',
    headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-version': '2021-12-02' },
    body,
  });
  await res.arrayBuffer();
  return res.status;
};
const withSas = async (method: string, url: string, sas: string) => {
  const res = await fetch(`${url}${url.includes('?') ? '&' : '?'}${sas}`, {
    method,
    headers: { 'x-ms-version': '2021-12-02' },
  });
  return { status: res.status, text: await res.text() };
};

describe('a job output grant (per-job container + SAS) against Azurite', () => {
  it('names one valid container per job, the same for the same job', () => {
    const a = jobOutputContainer('run-1-train-1');
    expect(a).toMatch(/^jobout-[0-9a-f]{32}$/);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(jobOutputContainer('run-1-train-1')).toBe(a);
    expect(jobOutputContainer('run-1-train-2')).not.toBe(a);
  });

  it('lets the job write, read and list its own container, and nothing else: not the records, not another job, not delete', async () => {
    // Sluice's own record of the job, where the status it decides on lives.
    await store.putJson({ container: 'jobs', path: 'job-a/status.json' }, { state: 'running' });
    const a = await grantJobOutput(store, 'job-a', { validForSeconds: 3600 });
    const b = await grantJobOutput(store, 'job-b', { validForSeconds: 3600 });
    expect(a.container).toBe(jobOutputContainer('job-a'));
    expect(a.sasToken).toMatch(/(^|&)sp=racwl(&|$)/);
    expect(a.sasToken).toMatch(/(^|&)sr=c(&|$)/);
    expect(a.expiresOn.getTime()).toBeGreaterThan(Date.now());

    // Its own folder: written, read back and listed with the SAS alone.
    expect(await putWithSas(a.container, 'output/MLmodel', a.sasToken, 'flavors: {}')).toBe(201);
    expect(await putWithSas(a.container, 'output/model.onnx', a.sasToken)).toBe(201);
    const read = await withSas('GET', `${a.containerUrl}/output/MLmodel`, a.sasToken);
    expect(read).toEqual({ status: 200, text: 'flavors: {}' });
    const list = await withSas('GET', `${a.containerUrl}?restype=container&comp=list`, a.sasToken);
    expect(list.status).toBe(200);
    expect(list.text).toContain('output/model.onnx');

    // Sluice's records: refused, and the record is unchanged.
    expect(await putWithSas('jobs', 'job-a/status.json', a.sasToken, '{"state":"completed"}')).toBe(403);
    expect(await putWithSas('jobs', 'job-a/outcome.json', a.sasToken)).toBe(403);
    expect((await store.getJson({ container: 'jobs', path: 'job-a/status.json' })).value).toEqual({
      state: 'running',
    });
    // The registry's models and another job's output: refused.
    expect(await putWithSas('models', 'mlflow/evil/MLmodel', a.sasToken)).toBe(403);
    expect(await putWithSas(b.container, 'output/MLmodel', a.sasToken)).toBe(403);
    expect(await store.exists({ container: b.container, path: 'output/MLmodel' })).toBe(false);
    // Reading another container is refused too (a job sees its own folder only).
    expect((await withSas('GET', `${store.service.url}/jobs/job-a/status.json`, a.sasToken)).status).toBe(
      403,
    );
    // No delete, even of its own files.
    expect((await withSas('DELETE', `${a.containerUrl}/output/MLmodel`, a.sasToken)).status).toBe(403);
    expect(await store.exists({ container: a.container, path: 'output/MLmodel' })).toBe(true);
  });

  it('a grant expires: an old SAS writes nothing', async () => {
    const old = await grantJobOutput(store, 'job-old', {
      validForSeconds: 60,
      now: () => Date.now() - 2 * 3600_000,
    });
    expect(await putWithSas(old.container, 'output/MLmodel', old.sasToken)).toBe(403);
  });

  it('a retried grant reuses the container and signs again', async () => {
    const first = await grantJobOutput(store, 'job-again', { validForSeconds: 600 });
    expect(await putWithSas(first.container, 'output/a', first.sasToken)).toBe(201);
    const second = await grantJobOutput(store, 'job-again', { validForSeconds: 600 });
    expect(second.container).toBe(first.container);
    expect(await store.exists({ container: second.container, path: 'output/a' })).toBe(true);
    expect(await putWithSas(second.container, 'output/b', second.sasToken)).toBe(201);
  });
});

/**
 * The production path: an app with a Microsoft Entra credential (no account key) signs a
 * user-delegation SAS. Get User Delegation Key needs Entra auth over TLS, which Azurite does not
 * offer here, so the key request is stubbed (and the container create, which would go to Azure);
 * everything Sluice does with the key — the SAS it signs, its scope, permissions and expiry, and
 * how a refusal is reported — runs for real.
 */
describe('a job output grant signed with a user delegation key (Entra credential)', () => {
  const ACCOUNT = 'stsluiceprod';
  const credential: TokenCredential = {
    getToken: async () => ({ token: 'fake-entra-token', expiresOnTimestamp: Date.now() + 3_600_000 }),
  };
  const entraStore = () => ({
    service: new BlobServiceClient(`https://${ACCOUNT}.blob.core.windows.net`, credential),
  });
  const key = (startsOn: Date, expiresOn: Date): ServiceGetUserDelegationKeyResponse =>
    ({
      signedObjectId: '11111111-1111-1111-1111-111111111111',
      signedTenantId: '22222222-2222-2222-2222-222222222222',
      signedStartsOn: startsOn,
      signedExpiresOn: expiresOn,
      signedService: 'b',
      signedVersion: '2021-12-02',
      value: Buffer.alloc(32, 7).toString('base64'),
    }) as ServiceGetUserDelegationKeyResponse;
  let created: jest.SpyInstance;
  beforeEach(() => {
    created = jest
      .spyOn(ContainerClient.prototype, 'createIfNotExists')
      .mockResolvedValue({ succeeded: true } as never);
  });
  afterEach(() => jest.restoreAllMocks());

  it('signs a container SAS (sr=c, sp=racwl, https only) with the key, capped below the 7-day key limit', async () => {
    const asked = jest
      .spyOn(BlobServiceClient.prototype, 'getUserDelegationKey')
      .mockImplementation(async (...args: unknown[]) => key(args[0] as Date, args[1] as Date));
    const now = Date.parse('2026-12-05T10:00:00Z');
    const grant = await grantJobOutput(entraStore(), 'job-prod', {
      validForSeconds: 4 * 3600,
      now: () => now,
    });
    expect(created).toHaveBeenCalledTimes(1);
    expect(grant.container).toBe(jobOutputContainer('job-prod'));
    expect(grant.containerUrl).toBe(`https://${ACCOUNT}.blob.core.windows.net/${grant.container}`);
    const sas = new URLSearchParams(grant.sasToken);
    expect(sas.get('sr')).toBe('c');
    expect(sas.get('sp')).toBe('racwl');
    expect(sas.get('spr')).toBe('https');
    expect(sas.get('skoid')).toBe('11111111-1111-1111-1111-111111111111');
    expect(sas.get('sktid')).toBe('22222222-2222-2222-2222-222222222222');
    expect(sas.get('sig')).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(sas.get('st')).toBe('2026-12-05T09:55:00Z');
    expect(sas.get('se')).toBe('2026-12-05T14:00:00Z');
    expect(grant.expiresOn.toISOString()).toBe('2026-12-05T14:00:00.000Z');
    // The key is asked for exactly the SAS's window.
    expect(asked).toHaveBeenCalledWith(new Date(now - 5 * 60_000), new Date(now + 4 * 3600_000));

    // However long the job may run, the SAS (and the key) stay under the key's 7-day maximum.
    const long = await grantJobOutput(entraStore(), 'job-long', {
      validForSeconds: 30 * 24 * 3600,
      now: () => now,
    });
    expect(long.expiresOn.getTime() - now).toBe((MAX_SAS_SECONDS - 600) * 1000);
    const [start, end] = asked.mock.calls[1] as unknown as [Date, Date];
    expect(end.getTime() - start.getTime()).toBeLessThanOrEqual(MAX_SAS_SECONDS * 1000);
  });

  it('a 403 on the key is output_grant_forbidden; another failure is transient', async () => {
    const refuse = jest
      .spyOn(BlobServiceClient.prototype, 'getUserDelegationKey')
      .mockRejectedValueOnce(
        Object.assign(new Error('AuthorizationPermissionMismatch'), { statusCode: 403 }),
      );
    await expect(grantJobOutput(entraStore(), 'job-403', { validForSeconds: 600 })).rejects.toMatchObject({
      constructor: NonRetriableError,
      code: 'output_grant_forbidden',
      message: expect.stringContaining(`on ${ACCOUNT}`),
    });
    refuse.mockRejectedValueOnce(Object.assign(new Error('ServerBusy'), { statusCode: 503 }));
    await expect(grantJobOutput(entraStore(), 'job-503', { validForSeconds: 600 })).rejects.toMatchObject({
      constructor: TransientError,
      code: 'storage_unavailable',
    });
  });
});
