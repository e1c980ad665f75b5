import type { Cookie, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { getServices } from '../../app/services';
import type { ConsoleAccess, ConsolePage, PageInput } from '../../lib/console';
import { consoleAccess, issueCsrf, messagePage, verifyCsrf } from '../../lib/console';
import { ensureError } from '../../lib/errors';
import type { Services } from '../../lib/services';

/**
 * The console's handler wrappers (functions/console*.ts). A page handler gets who is asking, the
 * anti-forgery token for its forms and the frame (banner, who, token) to hand renderPage; an action
 * handler (a POST) runs only for operators and only after the anti-forgery check (lib/console/csrf.ts).
 * Both turn errors into console pages: a 4xx ValidationError shows its message, anything else a 500
 * naming the invocation.
 */

export interface ConsoleCall {
  services: Services;
  access: ConsoleAccess;
  /** The anti-forgery token for this page's forms (csrfField). */
  csrf: string;
  /** Spread into renderPage: banner, who and csrf. */
  frame: Pick<PageInput, 'banner' | 'who' | 'csrf'>;
  context: InvocationContext;
}

export type ConsoleResult = ConsolePage | HttpResponseInit;

function frameOf(access: ConsoleAccess, csrf: string): ConsoleCall['frame'] {
  return {
    ...(access.banner ? { banner: access.banner } : {}),
    ...(access.local ? {} : { who: access.who }),
    csrf,
  };
}

function errorPage(err: unknown, context: InvocationContext, frame: ConsoleCall['frame']): ConsolePage {
  const e = ensureError(err) as Error & { status?: number };
  const status = typeof e.status === 'number' && e.status >= 400 && e.status < 500 ? e.status : 500;
  if (status >= 500) {
    context.error(err);
    return messagePage(
      500,
      'Something went wrong',
      `The page could not be built. Try again in a minute. (invocation ${context.invocationId})`,
      frame,
    );
  }
  return messagePage(status, status === 404 ? 'Not found' : 'That did not work', e.message, frame);
}

function withCookie(response: ConsoleResult, cookie: Cookie | undefined): HttpResponseInit {
  const init: HttpResponseInit = response;
  if (!cookie) return init;
  return { ...init, cookies: [...(init.cookies ?? []), cookie] };
}

function denied(access: ConsoleAccess, frame: ConsoleCall['frame'], operate: boolean): ConsolePage {
  if (!access.principal) {
    return messagePage(
      401,
      'Sign in to use the console',
      'The console needs App Service Authentication (Microsoft Entra sign-in) and the Sluice.Viewer or Sluice.Operator role; or, on your own machine, CONSOLE_OPEN=true.',
      frame,
    );
  }
  return messagePage(
    403,
    'Not allowed',
    operate
      ? `${access.who} may look but not act: this needs the Sluice.Operator app role.`
      : `${access.who} has neither the Sluice.Viewer nor the Sluice.Operator app role.`,
    frame,
  );
}

/** A GET page of the console. */
export function consolePage(
  handler: (request: HttpRequest, call: ConsoleCall) => Promise<ConsoleResult>,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    const grant = issueCsrf(request);
    let frame: ConsoleCall['frame'] = { csrf: grant.token };
    try {
      const services = await getServices();
      const access = consoleAccess(request, services);
      frame = frameOf(access, grant.token);
      if (!access.canView) return withCookie(denied(access, frame, false), grant.cookie);
      const result = await handler(request, { services, access, csrf: grant.token, frame, context });
      return withCookie(result, grant.cookie);
    } catch (err) {
      return withCookie(errorPage(err, context, frame), grant.cookie);
    }
  };
}

/** A redirect after a POST (303, so the browser GETs the page: reloading it repeats nothing). */
export function seeOther(location: string): HttpResponseInit {
  return { status: 303, headers: { location, 'cache-control': 'no-store' } };
}

/**
 * A POST action of the console (operators only, anti-forgery checked). The handler gets the form
 * fields; it usually answers with seeOther(the page).
 */
export function consoleAction(
  handler: (request: HttpRequest, form: URLSearchParams, call: ConsoleCall) => Promise<ConsoleResult>,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    const grant = issueCsrf(request);
    let frame: ConsoleCall['frame'] = { csrf: grant.token };
    try {
      const services = await getServices();
      const access = consoleAccess(request, services);
      frame = frameOf(access, grant.token);
      if (!access.canOperate) return withCookie(denied(access, frame, true), grant.cookie);
      const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      const text = await request.text();
      if (text.length > 64 * 1024) {
        return messagePage(413, 'That did not work', 'The form is over 64 KiB.', frame);
      }
      const form =
        type === 'application/x-www-form-urlencoded' ? new URLSearchParams(text) : new URLSearchParams();
      verifyCsrf(request, form, {
        publicBaseUrl: services.config.PUBLIC_BASE_URL,
        open: services.config.CONSOLE_OPEN,
      });
      return withCookie(
        await handler(request, form, { services, access, csrf: grant.token, frame, context }),
        grant.cookie,
      );
    } catch (err) {
      return withCookie(errorPage(err, context, frame), grant.cookie);
    }
  };
}
