import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { withServices } from '../app/services';
import { consoleAccess, issueCsrf } from '../lib/console';
import { REPORT_KINDS, type ReportKind } from '../lib/console/reports';
import { readRunReport, renderReportPage } from '../lib/console/run';
import { problem } from '../lib/http/problem';
import type { Services } from '../lib/services';
import { withProblems } from './support/http';
import { refuseUnlessReader } from './support/readAccess';

/** Whether the client asked for HTML (a browser following a link) rather than JSON. */
export function wantsHtml(request: HttpRequest): boolean {
  const format = new URL(request.url).searchParams.get('format');
  if (format === 'json') return false;
  if (format === 'html') return true;
  const accept = (request.headers.get('accept') ?? '').toLowerCase();
  return accept.includes('text/html');
}

/**
 * `GET /api/runs/{id}/reports/{kind}` (kind `validation` or `evaluation`): the run's stored report
 * as JSON, or rendered as a page when the client asks for HTML (`Accept: text/html`, what a browser
 * sends; `?format=json|html` overrides). The run document, the approval page and the console link
 * here, never to the storage account (whose URLs answer 403 to anyone without its keys). 400 names
 * an unknown kind; 404 an unknown run, or a run without that report yet. Only console viewers, or
 * a reviewer with a valid approval link for this run, may read (functions/support/readAccess.ts):
 * 401/403 otherwise, before anything else is said about the run.
 */
export const getRunReport =
  (deps: Pick<Services, 'runs' | 'artifacts' | 'config' | 'approval'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const id = request.params.id ?? '';
    const refused = await refuseUnlessReader(request, deps, { runId: id });
    if (refused) return refused;
    const kind = request.params.kind ?? '';
    if (!(REPORT_KINDS as readonly string[]).includes(kind)) {
      return problem(
        400,
        'unknown_report_kind',
        `no report kind ${JSON.stringify(kind)}: use ${REPORT_KINDS.join(' or ')}`,
        { field: 'kind' },
      );
    }
    const run = await deps.runs.find(id);
    if (!run) return problem(404, 'run_not_found', `no run with id ${id}`, { field: 'id' });
    const report = await readRunReport(deps, run, kind as ReportKind);
    if (!report) {
      return problem(
        404,
        'report_not_found',
        `run ${id} has no ${kind} report (yet): its step has not written one`,
        {
          field: 'kind',
        },
      );
    }
    if (wantsHtml(request)) {
      const access = consoleAccess(request, deps);
      const page = renderReportPage(run, kind as ReportKind, report, {
        ...(access.banner ? { banner: access.banner } : {}),
        ...(access.local ? {} : { who: access.who }),
        csrf: issueCsrf(request).token,
      });
      return { status: 200, headers: { ...page.headers, vary: 'accept' }, body: page.body };
    }
    return { status: 200, headers: { 'cache-control': 'no-store', vary: 'accept' }, jsonBody: report };
  };

app.http('getRunReport', {
  route: 'api/runs/{id}/reports/{kind}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(withServices(getRunReport)),
});
