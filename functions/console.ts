import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import * as df from 'durable-functions';
import { consoleAsset, messagePage, runPagePath } from '../lib/console';
import { overridesOfRuns } from '../lib/console/overrides';
import { loadRunDetails, renderRunPage } from '../lib/console/run';
import { renderRunsPage } from '../lib/console/runs';
import { terminalRunStatuses } from '../lib/runs/document';
import { reconcileRun } from '../lib/runs/reconcile';
import { cancelRunNow } from './support/cancel';
import { consoleAction, consolePage, seeOther } from './support/console';
import { reconcileDeps } from './support/reconcile';

/**
 * The console's shell (docs/console.md): the root, its static assets and the Runs pages. Other
 * sections live in functions/console<Section>.ts. These are the only routes outside `api/`
 * (test/architecture/routes.test.ts).
 *
 * The root. host.json's routePrefix is "", but a route of "" (or none) means "the function's name"
 * to the Functions host, and a root request with no function on it gets the host's own home page.
 * An optional parameter that can only be empty matches "/" and nothing else, on the Azure Functions
 * host (ASP.NET routing: an optional last segment may be absent; `maxlength(0)` refuses any value)
 * and on devhost (devhost/http/routes.ts implements the same template rules), so one registration
 * works in both. Set AzureWebJobsDisableHomepage=true as well, so a host that misses the route
 * answers 204 rather than its marketing page.
 */
app.http('consoleHome', {
  route: '{ignored:maxlength(0)?}',
  methods: ['GET', 'HEAD'],
  authLevel: 'anonymous',
  handler: async (): Promise<HttpResponseInit> => ({
    status: 302,
    headers: { location: '/runs', 'cache-control': 'no-store' },
  }),
});

/** `/console/assets/{file}`: the stylesheet and the script, immutable under their `?v=` hash. */
export async function serveConsoleAsset(request: HttpRequest): Promise<HttpResponseInit> {
  const file = consoleAsset(request.params.file ?? '');
  if (!file) return { status: 404, headers: { 'content-type': 'text/plain' }, body: 'no such asset' };
  const v = new URL(request.url).searchParams.get('v');
  return {
    status: 200,
    headers: {
      'content-type': file.contentType,
      'x-content-type-options': 'nosniff',
      etag: `"${file.version}"`,
      'cache-control': v === file.version ? 'public, max-age=31536000, immutable' : 'no-cache',
    },
    body: file.body,
  };
}

app.http('consoleAsset', {
  route: 'console/assets/{file}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: serveConsoleAsset,
});

app.http('consoleRuns', {
  route: 'runs',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (request, call) =>
    renderRunsPage(
      {
        ...call.services,
        overrides: (ids) => overridesOfRuns(call.services.cosmos.container('models'), ids),
      },
      new URL(request.url).searchParams,
      call.frame,
    ),
  ),
});

/**
 * `/runs/{pipeline}/{id}`: the Run page. The pipeline is the runs container's partition key, so the
 * run is one point read; finding a run by id alone is a query over every partition, which the
 * embedded emulator answers by scanning every run (docs/console.md, "Speed").
 */
app.http('consoleRun', {
  route: 'runs/{pipeline}/{id}',
  methods: ['GET'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: consolePage(async (request, call) => {
    const pipeline = request.params.pipeline ?? '';
    const id = request.params.id ?? '';
    const { services } = call;
    let run = await services.runs.get(pipeline, id);
    if (!run) {
      // A link that guessed the pipeline wrong (a model's alias move names its run, not the run's
      // pipeline): the run found by id alone, sent on to its own path. Costs the scan only on a miss.
      const elsewhere = await services.runs.find(id);
      if (elsewhere && elsewhere.pipeline !== pipeline) {
        return {
          status: 301,
          headers: {
            location: `${runPagePath(id, elsewhere.pipeline)}${new URL(request.url).search}`,
            'cache-control': 'no-store',
          },
        };
      }
      return messagePage(
        404,
        'Run not found',
        `There is no run with id ${id} in pipeline ${pipeline}.`,
        call.frame,
      );
    }
    // Like GET /api/runs/{id}: a run that has not ended is first reconciled with its orchestration.
    try {
      run = await reconcileRun(reconcileDeps(services, call.context), run);
    } catch (err) {
      call.context.warn(`run ${id}: could not reconcile with its orchestration: ${(err as Error).message}`);
    }
    const now = new Date();
    const details = await loadRunDetails(
      { ...services, models: services.cosmos.container('models'), now: () => now },
      run,
    );
    const done = new URL(request.url).searchParams.get('done');
    return renderRunPage(run, details, now, call.frame, {
      canOperate: call.access.canOperate,
      csrf: call.csrf,
      ...(done === 'cancel' ? { notice: `Canceled: ${run.reason ?? 'the run was canceled'}.` } : {}),
    });
  }),
});

/**
 * `/runs/{id}`: old links that know only the run's id (the API's `links.console` and the model
 * page linked here before they named the pipeline) land here and are sent on to
 * `/runs/{pipeline}/{id}` with their query string. A run never changes pipeline, so the redirect is
 * permanent.
 */
app.http('consoleRunById', {
  route: 'runs/{id}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (request, call) => {
    const id = request.params.id ?? '';
    const run = await call.services.runs.find(id);
    if (!run) return messagePage(404, 'Run not found', `There is no run with id ${id}.`, call.frame);
    const { search } = new URL(request.url);
    return {
      status: 301,
      headers: { location: `${runPagePath(id, run.pipeline)}${search}`, 'cache-control': 'no-store' },
    };
  }),
});

/**
 * `POST /runs/{pipeline}/{id}/cancel` from the Run page's Cancel button (and `/runs/{id}/cancel`,
 * the older form): operators only, anti-forgery checked (functions/support/console.ts), then the
 * same code as `POST /api/runs/{id}/cancel`.
 */
const cancelFromConsole = consoleAction(async (request, _form, call) => {
  const id = request.params.id ?? '';
  const pipeline = request.params.pipeline;
  const run = pipeline ? await call.services.runs.get(pipeline, id) : await call.services.runs.find(id);
  if (!run) return messagePage(404, 'Run not found', `There is no run with id ${id}.`, call.frame);
  if (terminalRunStatuses.has(run.status)) {
    return messagePage(
      409,
      'This run has already ended',
      `Run ${id} ended as ${run.status}; there is nothing to cancel.`,
      call.frame,
    );
  }
  await cancelRunNow(call.services, df.getClient(call.context), run, call.access.who, call.context);
  return seeOther(`${runPagePath(id, run.pipeline)}?done=cancel`);
});

app.http('consoleCancelRun', {
  route: 'runs/{pipeline}/{id}/cancel',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: cancelFromConsole,
});

app.http('consoleCancelRunById', {
  route: 'runs/{id}/cancel',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: cancelFromConsole,
});
