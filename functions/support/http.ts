import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { ValidationError } from '../../lib/errors';
import { errorProblem } from '../../lib/http/problem';

/** The media type of a request, lower-cased, without parameters; '' when there is none. */
export function mediaType(request: HttpRequest): string {
  return (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** `application/json` or a JSON-based type such as `application/cloudevents+json`. */
export function isJsonType(type: string): boolean {
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

/**
 * The cross-site request guard of every state-changing endpoint. A page on any site can make a
 * browser send a POST with `application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`
 * or no content type at all without asking this origin first (no CORS preflight), so those could
 * move production from a visitor's browser when keys are off (devhost) or travel with cookies.
 * A JSON content type needs a preflight, which nothing here grants. So: a JSON content type, also
 * for a POST without a body, or 415 naming `content-type`.
 */
export function requireJsonContentType(request: HttpRequest): void {
  const type = mediaType(request);
  if (!isJsonType(type)) {
    throw new ValidationError(
      'unsupported_media_type',
      `this endpoint changes state and takes JSON only: send content-type: application/json (also with an empty body); got ${type || 'no content type'}`,
      { status: 415, field: 'content-type' },
    );
  }
}

/** Reads a JSON body with a size cap; bad JSON and wrong types are 4xx naming what is wrong. */
export async function readJsonBody(request: HttpRequest, maxBytes: number): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    throw new ValidationError('body_too_large', `the body is ${declared} bytes; the limit is ${maxBytes}`, {
      status: 413,
      field: 'content-length',
    });
  }
  requireJsonContentType(request);
  const text = await request.text();
  if (Buffer.byteLength(text) > maxBytes) {
    throw new ValidationError('body_too_large', `the body is over the limit of ${maxBytes} bytes`, {
      status: 413,
    });
  }
  if (!text.trim())
    throw new ValidationError('empty_body', 'the body is empty; send a JSON document', { field: '(body)' });
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ValidationError('invalid_json', `the body is not valid JSON: ${(err as Error).message}`, {
      field: '(body)',
    });
  }
}

/** Wraps a handler so any thrown error becomes a problem+json response (500s are logged with the stack). */
export function withProblems(
  handler: (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    try {
      return await handler(request, context);
    } catch (err) {
      const p = errorProblem(err, context.invocationId);
      if (p.status >= 500) context.error(err);
      else
        context.log(`${request.method} ${request.url}: ${p.status} ${p.jsonBody.code}: ${p.jsonBody.detail}`);
      return p;
    }
  };
}
