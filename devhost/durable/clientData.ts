/**
 * The `durableClient` binding data (durable-host-spec §8): what `df.getClient(context)` reads to build
 * its HTTP client, and the management URLs `createCheckStatusResponse` hands out.
 */

export const webhookPath = '/runtime/webhooks/durabletask';

export interface ClientUrls {
  /** Public origin, e.g. `http://localhost:7071`. */
  baseUrl: string;
  hubName: string;
  connectionName?: string;
  /** When keys are on: the `durabletask_extension` system key every URL carries as `code=`, as in Azure. */
  systemKey?: string;
}

function query(u: ClientUrls): string {
  const code = u.systemKey === undefined ? '' : `&code=${encodeURIComponent(u.systemKey)}`;
  return `taskHub=${encodeURIComponent(u.hubName)}&connection=${u.connectionName ?? 'Storage'}${code}`;
}

/** Management URLs for one instance (the check-status payload of §9.2, plus `rewindPostUri`). */
export function managementUrls(u: ClientUrls, instanceId: string): Record<string, string> {
  const base = `${u.baseUrl}${webhookPath}/instances/${instanceId}`;
  const q = query(u);
  return {
    id: instanceId,
    statusQueryGetUri: `${base}?${q}`,
    sendEventPostUri: `${base}/raiseEvent/{eventName}?${q}`,
    terminatePostUri: `${base}/terminate?reason={text}&${q}`,
    rewindPostUri: `${base}/rewind?reason={text}&${q}`,
    purgeHistoryDeleteUri: `${base}?${q}`,
    restartPostUri: `${base}/restart?${q}`,
    suspendPostUri: `${base}/suspend?reason={text}&${q}`,
    resumePostUri: `${base}/resume?reason={text}&${q}`,
  };
}

/** What the extension's start endpoint answers with (no `rewindPostUri`, unlike the JS client's own). */
export function checkStatusPayload(u: ClientUrls, instanceId: string): Record<string, string> {
  const { rewindPostUri: _omit, ...rest } = managementUrls(u, instanceId);
  return rest;
}

export function clientBindingData(
  u: ClientUrls & { rpcBaseUrl?: string | undefined },
): Record<string, unknown> {
  const q = query(u);
  const hook = `${u.baseUrl}${webhookPath}`;
  return {
    taskHubName: u.hubName,
    creationUrls: {
      createNewInstancePostUri: `${hook}/orchestrators/{functionName}[/{instanceId}]?${q}`,
      createAndWaitOnNewInstancePostUri: `${hook}/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&${q}`,
    },
    managementUrls: managementUrls(u, 'INSTANCEID'),
    baseUrl: hook,
    requiredQueryStringParameters: q,
    ...(u.rpcBaseUrl ? { rpcBaseUrl: u.rpcBaseUrl } : {}),
    connectionName: u.connectionName ?? 'Storage',
  };
}
