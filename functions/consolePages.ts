import { app, HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { getServices } from '../app/services';
import type { ConsoleAccess } from '../lib/console';
import { consoleAccess, issueCsrf, messagePage, runPagePath, verifyCsrf } from '../lib/console';
import { loadApprovals, renderApprovalsPage } from '../lib/console/pages/approvals';
import { loadModel, loadModelList, renderModelListPage, renderModelPage } from '../lib/console/pages/models';
import {
  loadPipeline,
  loadPipelineList,
  renderPipelineListPage,
  renderPipelinePage,
} from '../lib/console/pages/pipelines';
import { ValidationError } from '../lib/errors';
import { switchSchedule } from '../lib/pipelines/pause';
import type { Services } from '../lib/services';
import { modelMlflowZip } from './modelMlflowZip';
import { createRollbackHandler } from './rollbackModel';
import { startRun } from './startRun';
import type { ConsoleCall } from './support/console';
import { consoleAction, consolePage, seeOther } from './support/console';
import { withProblems } from './support/http';

/**
 * The console's Approvals, Models and Pipelines pages (docs/console.md), and their operator actions:
 * roll back a model, pause or resume a schedule, run a pipeline on an uploaded file. Each action
 * goes through the same code as its API endpoint (the rollback handler, lib/pipelines/pause.ts, the
 * startRun handler), so the console can do nothing the API would refuse, and records the console
 * user as who did it.
 */

const done = (url: string, key: string, value: string) =>
  `${url}${url.includes('?') ? '&' : '?'}${key}=${encodeURIComponent(value)}`;

/** Notices after an action's redirect, from a fixed list (a query string cannot put words on the page). */
function noticeOf(query: URLSearchParams): { kind: 'success'; text: string } | undefined {
  const d = query.get('done');
  if (d === 'rollback')
    return { kind: 'success', text: `Production was rolled back to v${Number(query.get('to')) || '?'}.` };
  if (d === 'paused') return { kind: 'success', text: 'The schedule is paused.' };
  if (d === 'resumed') return { kind: 'success', text: 'The schedule is running again.' };
  return undefined;
}

/** A problem response of an API handler, as a console page that explains it. */
function problemPage(res: HttpResponseInit, title: string, call: ConsoleCall) {
  const body = res.jsonBody as { detail?: string; code?: string } | undefined;
  return messagePage(
    res.status ?? 500,
    title,
    body?.detail ?? `the request failed (${res.status})`,
    call.frame,
  );
}

/** A request to an API handler on behalf of the console user (who is recorded as the requester). */
function apiRequest(
  source: HttpRequest,
  access: ConsoleAccess,
  init: { path: string; params: Record<string, string>; contentType: string; body: string | Uint8Array },
): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: new URL(init.path, source.url).toString(),
    params: init.params,
    headers: { 'content-type': init.contentType, 'x-ms-client-principal-name': access.who },
    body: typeof init.body === 'string' ? { string: init.body } : { bytes: init.body },
  });
}

app.http('consoleApprovals', {
  route: 'approvals',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (_request, call) => {
    const { services: s, access } = call;
    const keyring = await s
      .approval()
      .then((a) => a.keyring)
      .catch(() => undefined);
    const now = s.now();
    const view = await loadApprovals({ approvals: s.cosmos.container('approvals'), keyring, now }, access);
    return renderApprovalsPage(view, access, now, call.frame);
  }),
});

app.http('consoleModels', {
  route: 'models',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (_request, call) =>
    renderModelListPage(await loadModelList(call.services.registry), call.frame),
  ),
});

app.http('consoleModel', {
  route: 'models/{name}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (request, call) => {
    const name = request.params.name ?? '';
    const view = await loadModel(
      {
        registry: call.services.registry,
        approvals: call.services.cosmos.container('approvals'),
        monitoring: call.services.monitoring.store,
      },
      name,
    );
    if (!view) return messagePage(404, 'Not found', `No model named "${name}" is registered.`, call.frame);
    const notice = noticeOf(new URL(request.url).searchParams);
    return renderModelPage({ ...view, ...(notice ? { notice } : {}) }, call.access, call.frame);
  }),
});

/** The rollback API's own handler, wired as functions/rollbackModel.ts wires it. */
const rollbackHandler = (s: Services) =>
  createRollbackHandler(
    async () => s.registry,
    (name) => s.scoring.invalidate(name),
    async (name, version) => s.approvals.findByCandidate(name, version),
  );

app.http('consoleModelRollback', {
  route: 'models/{name}/rollback',
  methods: ['POST'],
  authLevel: 'anonymous',
  handler: consoleAction(async (request, form, call) => {
    const name = request.params.name ?? '';
    const to = form.get('to');
    const body = { reason: form.get('reason') ?? '', ...(to ? { to: Number(to) } : {}) };
    const res = await rollbackHandler(call.services)(
      apiRequest(request, call.access, {
        path: `/api/models/${encodeURIComponent(name)}/rollback`,
        params: { name },
        contentType: 'application/json',
        body: JSON.stringify(body),
      }),
      call.context,
    );
    if ((res.status ?? 200) >= 400) return problemPage(res, 'Rollback refused', call);
    const moved = res.jsonBody as { to: number };
    return seeOther(
      done(done(`/models/${encodeURIComponent(name)}`, 'done', 'rollback'), 'to', String(moved.to)),
    );
  }),
});

/**
 * `/models/{name}/versions/{v}/mlflow`: the version as an MLflow model zip, for console users. The
 * API's route needs a function key in Azure, which a signed-in console user does not hold; this one
 * is behind the console's sign-in and roles (Sluice.Viewer) and answers with the API's own handler
 * (functions/modelMlflowZip.ts), so the bytes and headers are the same. A problem (bad version,
 * unknown model) is shown as a console page.
 */
app.http('consoleModelMlflowZip', {
  route: 'models/{name}/versions/{v}/mlflow',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (request, call) => {
    const res = await modelMlflowZip(call.services)(request);
    if ((res.status ?? 200) >= 400) return problemPage(res, 'No such model version', call);
    return res;
  }),
});

app.http('consolePipelines', {
  route: 'pipelines',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (_request, call) =>
    renderPipelineListPage(await loadPipelineList(call.services.pipelines, call.services.now()), call.frame),
  ),
});

app.http('consolePipeline', {
  route: 'pipelines/{name}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: consolePage(async (request, call) => {
    const name = request.params.name ?? '';
    const query = new URL(request.url).searchParams;
    const view = await loadPipeline(
      { pipelines: call.services.pipelines, schedules: call.services.cosmos.container('schedules') },
      name,
      query,
      call.services.now(),
    );
    if (!view) return messagePage(404, 'Not found', `No pipeline named "${name}".`, call.frame);
    const notice = noticeOf(query);
    return renderPipelinePage({ ...view, ...(notice ? { notice } : {}) }, call.access, call.frame);
  }),
});

app.http('consolePipelineSchedule', {
  route: 'pipelines/{name}/schedule',
  methods: ['POST'],
  authLevel: 'anonymous',
  handler: consoleAction(async (request, form, call) => {
    const name = request.params.name ?? '';
    const action = form.get('action');
    if (action !== 'pause' && action !== 'resume') {
      throw new ValidationError('invalid_action', 'action must be pause or resume', { field: 'action' });
    }
    const reason = (form.get('reason') ?? '').trim();
    if (reason.length > 500) {
      throw new ValidationError('invalid_reason', 'the reason is over 500 characters', { field: 'reason' });
    }
    await switchSchedule(call.services.pipelines, {
      name,
      paused: action === 'pause',
      by: call.access.who,
      reason,
      now: call.services.now(),
    });
    return seeOther(
      done(`/pipelines/${encodeURIComponent(name)}`, 'done', action === 'pause' ? 'paused' : 'resumed'),
    );
  }),
});

/** What a file's name or browser-given type says it is, in the media types startRun takes. */
function uploadType(file: File): string | undefined {
  const ext = /\.([a-z]+)$/i.exec(file.name)?.[1]?.toLowerCase();
  const byExt: Record<string, string> = {
    csv: 'text/csv',
    jsonl: 'application/x-ndjson',
    ndjson: 'application/x-ndjson',
    parquet: 'application/vnd.apache.parquet',
  };
  if (ext && byExt[ext]) return byExt[ext];
  const t = file.type.toLowerCase();
  return Object.values(byExt).includes(t) || t === 'application/csv' ? t : undefined;
}

/**
 * Run now: a multipart form with the file and the anti-forgery field (consoleAction reads only
 * url-encoded forms, so this one checks access and the token itself, in the same order). The file is
 * handed to the startRun handler as the body the API takes, so the same checks apply (type sniffing,
 * INGEST_MAX_BYTES, concurrent upload slots).
 */
export async function consoleRunNow(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const grant = issueCsrf(request);
  let frame: ConsoleCall['frame'] = { csrf: grant.token };
  const withCookie = (r: HttpResponseInit): HttpResponseInit =>
    grant.cookie ? { ...r, cookies: [...(r.cookies ?? []), grant.cookie] } : r;
  try {
    const services = await getServices();
    const access = consoleAccess(request, services);
    frame = {
      ...(access.banner ? { banner: access.banner } : {}),
      ...(access.local ? {} : { who: access.who }),
      csrf: grant.token,
    };
    const call: ConsoleCall = { services, access, csrf: grant.token, frame, context };
    if (!access.canOperate) {
      return withCookie(
        messagePage(
          access.principal ? 403 : 401,
          'Not allowed',
          'Starting a run needs the Sluice.Operator app role.',
          frame,
        ),
      );
    }
    const declared = Number(request.headers.get('content-length') ?? '0');
    const limit = services.config.INGEST_MAX_BYTES;
    if (declared > limit + 64 * 1024) {
      return withCookie(
        messagePage(
          413,
          'That did not work',
          `The file is over the limit of ${limit} bytes (INGEST_MAX_BYTES).`,
          frame,
        ),
      );
    }
    let form: FormData;
    try {
      form = await request.formData();
    } catch {
      throw new ValidationError(
        'invalid_form',
        'send the form from the pipeline page (multipart/form-data with a file)',
        {
          field: '(body)',
        },
      );
    }
    verifyCsrf(request, form, {
      publicBaseUrl: services.config.PUBLIC_BASE_URL,
      open: services.config.CONSOLE_OPEN,
    });
    const file = form.get('file');
    if (!(file instanceof File) || file.size === 0) {
      throw new ValidationError('empty_body', 'choose a non-empty file to upload', { field: 'file' });
    }
    const type = uploadType(file);
    if (!type) {
      throw new ValidationError(
        'unsupported_media_type',
        `"${file.name}" is not a .csv, .jsonl or .parquet file`,
        {
          status: 415,
          field: 'file',
        },
      );
    }
    const name = request.params.name ?? '';
    const res = await withProblems(startRun(services))(
      apiRequest(request, access, {
        path: `/api/pipelines/${encodeURIComponent(name)}/runs`,
        params: { name },
        contentType: type,
        body: new Uint8Array(await file.arrayBuffer()),
      }),
      context,
    );
    if ((res.status ?? 200) >= 400) return withCookie(problemPage(res, 'The run did not start', call));
    const started = res.jsonBody as { runId: string };
    return withCookie(seeOther(runPagePath(started.runId, name)));
  } catch (err) {
    const e = err as Error & { status?: number };
    const status = typeof e.status === 'number' && e.status >= 400 && e.status < 500 ? e.status : 500;
    if (status >= 500) context.error(err);
    return withCookie(
      messagePage(
        status,
        'That did not work',
        status >= 500 ? `The run could not be started. (invocation ${context.invocationId})` : e.message,
        frame,
      ),
    );
  }
}

app.http('consolePipelineRun', {
  route: 'pipelines/{name}/run',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: consoleRunNow,
});

/**
 * `/favicon.ico`: browsers ask for it on every site (not through the page, so no link tag stops
 * them), and a 404 shows as a console error. A small SVG mark, cached for a day.
 */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2352c7"/><path d="M4 11.5c1 .8 2.3 1.2 3.7 1.2 2 0 3.3-1 3.3-2.5 0-3-6-2-6-4.6C5 4.5 6 3.6 7.8 3.6c1.1 0 2.1.3 2.9.8" fill="none" stroke="#fff" stroke-width="1.6" stroke-linecap="round"/></svg>';

app.http('consoleFavicon', {
  route: 'favicon.ico',
  methods: ['GET', 'HEAD'],
  authLevel: 'anonymous',
  handler: async (): Promise<HttpResponseInit> => ({
    status: 200,
    headers: {
      'content-type': 'image/svg+xml',
      'cache-control': 'public, max-age=86400',
      'x-content-type-options': 'nosniff',
    },
    body: FAVICON,
  }),
});
