import { createHash } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import {
  BlobServiceClient,
  ContainerSASPermissions,
  SASProtocol,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { NonRetriableError, TransientError } from '../../errors';
import type { ArtifactStore } from '../../storage/blob';

/**
 * Where a remote job may write, and nothing else: a container of its own in the artifact account
 * (`jobout-<32 hex of SHA-256(jobId)>`) and a SAS for that container only. Sluice's records of the
 * job (request, status, outcome, cancel marker) stay in the `jobs` container, which no job identity
 * can write, so nothing a job does can change what Sluice decides about it: Sluice reads back only
 * what is in the job's own container and checks it (collectJobModel) before anything is registered.
 *
 * The artifact account has a flat namespace, where a SAS cannot be narrower than a container (a
 * directory SAS needs a hierarchical namespace): hence one container per job rather than a prefix.
 *
 * The SAS: read, add, create, write and list (no delete), from five minutes ago (clock skew) to
 * `validForSeconds` from now. In Azure it is a user-delegation SAS signed with a key the app's
 * managed identity asks for (Get User Delegation Key; the app's Storage Blob Data Contributor role
 * includes `generateUserDelegationKey`), capped at the key's 7-day maximum; with an account key
 * (Azurite, a connection string) it is signed with that key. Neither can be revoked one by one
 * (deleting the Azure ML datastore that holds it does not), so it stays valid to `expiresOn`
 * whether or not the job has ended: Sluice reads what decides anything once and records it (the
 * outcome and model at collection, a score job's predictions digest on first read).
 */
export interface JobOutputGrant {
  /** The job's own container. */
  container: string;
  accountName: string;
  /** The container's URL, without the SAS. */
  containerUrl: string;
  /** The SAS query string (no leading `?`). */
  sasToken: string;
  expiresOn: Date;
}

/** The job's own output container: a valid container name (3-63 lowercase letters, digits, hyphens). */
export const jobOutputContainer = (jobId: string): string =>
  `jobout-${createHash('sha256').update(jobId, 'utf8').digest('hex').slice(0, 32)}`;

/** The longest a user-delegation key (and so its SAS) may live. */
export const MAX_SAS_SECONDS = 7 * 24 * 3600;
const PERMISSIONS = 'racwl';
const SKEW_MS = 5 * 60_000;

export interface GrantOptions {
  /** How long the job may write: its queue limit plus its time limit plus a margin. */
  validForSeconds: number;
  now?: () => number;
}

/**
 * Creates the job's output container (idempotent: a retried submit reuses it) and signs a SAS for
 * it alone. A storage failure is transient; a credential that cannot sign names why.
 */
export async function grantJobOutput(
  store: Pick<ArtifactStore, 'service'>,
  jobId: string,
  options: GrantOptions,
): Promise<JobOutputGrant> {
  const now = (options.now ?? Date.now)();
  const container = jobOutputContainer(jobId);
  const client = store.service.getContainerClient(container);
  try {
    await client.createIfNotExists();
  } catch (err) {
    throw new TransientError(
      'storage_unavailable',
      `could not create the job's output container ${container}: ${(err as Error).message}`,
    );
  }
  const startsOn = new Date(now - SKEW_MS);
  const expiresOn = new Date(now + Math.min(options.validForSeconds, MAX_SAS_SECONDS - 600) * 1000);
  const values = {
    containerName: container,
    permissions: ContainerSASPermissions.parse(PERMISSIONS),
    startsOn,
    expiresOn,
    // Azurite answers plain http on loopback; Azure accounts take https only.
    protocol: store.service.url.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
  };
  const credential = store.service.credential;
  let sasToken: string;
  if (credential instanceof StorageSharedKeyCredential) {
    sasToken = generateBlobSASQueryParameters(values, credential).toString();
  } else if (typeof (credential as Partial<TokenCredential>).getToken === 'function') {
    let key;
    try {
      key = await new BlobServiceClient(
        store.service.url,
        credential as TokenCredential,
      ).getUserDelegationKey(startsOn, expiresOn);
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 403)
        throw new NonRetriableError(
          'output_grant_forbidden',
          `the app's identity may not get a user delegation key on ${store.service.accountName} (it needs Storage Blob Data Contributor, or Storage Blob Delegator): ${(err as Error).message}`,
        );
      throw new TransientError(
        'storage_unavailable',
        `could not get a user delegation key from ${store.service.accountName}: ${(err as Error).message}`,
      );
    }
    sasToken = generateBlobSASQueryParameters(values, key, store.service.accountName).toString();
  } else {
    throw new NonRetriableError(
      'output_grant_unsupported',
      'the artifact store has neither an account key nor a Microsoft Entra credential to sign a SAS with',
    );
  }
  return { container, accountName: store.service.accountName, containerUrl: client.url, sasToken, expiresOn };
}
