import type { Config } from '../config';
import { getConfig } from '../config';
import type { Notifier } from '../notify';
import { createNotifier } from '../notify';
import resources from '../resources.json';
import { azureCredential, getArtifactStore, getCosmos } from '../storage';
import type { ApprovalServiceDeps } from './service';
import { ApprovalStore } from './store';
import type { Keyring } from '../keyring';
import { parseKeyring } from '../keyring';

/**
 * Everything the approval functions and activities need, built once per process from the
 * settings. Tests build their own (see the create* handler factories).
 */
export interface ApprovalDeps extends ApprovalServiceDeps {
  store: ApprovalStore;
  keyring: Keyring;
  notifier: Notifier;
  publicBaseUrl: string;
}

async function build(config: Config): Promise<ApprovalDeps> {
  const cosmos = getCosmos(config);
  // Locally the emulator starts empty; in Azure, Bicep creates the containers (and roles cannot).
  if (config.COSMOS_KEY) await cosmos.ensure();
  const artifacts = getArtifactStore(config);
  const notifier = createNotifier(config, {
    outbox: () => artifacts.containerClient(resources.blobContainers.outbox),
    credential: () => azureCredential(config.AZURE_CLIENT_ID),
  });
  if (notifier.channel === 'outbox')
    await artifacts.containerClient(resources.blobContainers.outbox).createIfNotExists();
  return {
    store: new ApprovalStore(cosmos.container('approvals')),
    keyring: parseKeyring(config.APPROVAL_SIGNING_KEYS, config.APPROVAL_ACTIVE_KEY_ID),
    notifier,
    publicBaseUrl: config.PUBLIC_BASE_URL,
    requireSignin: config.APPROVAL_REQUIRE_SIGNIN,
    now: () => new Date(),
  };
}

let deps: Promise<ApprovalDeps> | undefined;
export function getApprovalDeps(config?: Config): Promise<ApprovalDeps> {
  deps ??= build(config ?? getConfig()).catch((err: unknown) => {
    deps = undefined;
    throw err;
  });
  return deps;
}
export function resetApprovalDepsForTests(): void {
  deps = undefined;
}

/** The approval page URL for a token. */
export function approvalLink(publicBaseUrl: string, token: string): string {
  return `${publicBaseUrl}/api/approvals/${token}`;
}
