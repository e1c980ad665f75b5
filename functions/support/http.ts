import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { ValidationError } from '../../lib/errors';
import { errorProblem } from '../../lib/http/problem';

/** Reads a JSON body with a size cap; bad JSON and wrong types are 4xx naming what is wrong. */
export async function readJsonBody(request: HttpRequest, maxBytes: number): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    throw new ValidationError('body_too_large', `the body is ${declared} bytes; the limit is ${maxBytes}`, {
      status: 413,
      field: 'content-length',
    });
  }
  const type = (request.headers.get('content-type') ?? '').toLowerCase();
  if (type && !type.startsWith('application/json')) {
    throw new ValidationError('unsupported_media_type', `expected application/json, got ${type}`, {
      status: 415,
      field: 'content-type',
    });
  }
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
