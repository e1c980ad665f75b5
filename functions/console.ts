import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { consoleAsset } from '../lib/console';
import { renderRunsPage } from '../lib/console/runs';
import { consolePage } from './support/console';

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
    renderRunsPage(call.services, new URL(request.url).searchParams, call.frame),
  ),
});
