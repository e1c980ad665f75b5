import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getBuiltServices } from '../app/services';
import { checkHealth, type Probes } from '../lib/storage';

/**
 * `GET /api/health`: 200 with the state and latency of Blob, Table and Cosmos, or 503 naming each
 * failing dependency. Anonymous; in Azure it only reads (against the local emulators it first creates
 * the app's containers once, as the app itself does on first use).
 */
export function createHealthHandler(
  getProbes: () => Probes | Promise<Probes>,
  options: { timeoutMs?: number } = {},
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (_request, context) => {
    const headers = { 'cache-control': 'no-store' };
    let probes: Probes;
    try {
      probes = await getProbes();
    } catch (err) {
      // Settings missing or invalid: nothing can be reached, and the message says which.
      const detail = err instanceof Error ? err.message : String(err);
      context.error(`health: configuration: ${detail}`);
      return { status: 503, headers, jsonBody: { status: 'unhealthy', failing: ['config'], detail } };
    }
    const report = await checkHealth(probes, options);
    if (report.status === 'healthy') return { status: 200, headers, jsonBody: report };
    const detail = report.failing
      .map(
        (d) =>
          `${d}: ${report.checks[d].code ? `${report.checks[d].code} ` : ''}${report.checks[d].error ?? 'down'}`,
      )
      .join('; ');
    context.warn(`health: unhealthy: ${detail}`);
    return { status: 503, headers, jsonBody: { ...report, detail: `unhealthy: ${detail}` } };
  };
}

/**
 * Probes on the app's own clients, built but not prepared: an emulator that is down is reported as
 * down, not as a failure to start. Settings that do not parse are reported as `config`.
 */
export const healthHandler = createHealthHandler(async () => (await getBuiltServices()).probes);

app.http('health', { route: 'api/health', methods: ['GET'], authLevel: 'anonymous', handler: healthHandler });
