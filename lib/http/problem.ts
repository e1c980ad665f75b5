import type { z } from 'zod';
import { ensureError } from '../errors';

/** An RFC 9457 problem body; `field` names the offending input (a JSON path, query or header name). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  field?: string;
  errors?: { field: string; message: string }[];
  invocationId?: string;
}

/** A plain `HttpResponseInit` (kept free of @azure/functions so lib/ stays host-agnostic). */
export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  jsonBody: Problem;
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(
  status: number,
  code: string,
  detail: string,
  extra: { field?: string; errors?: { field: string; message: string }[]; invocationId?: string } = {},
): ProblemResponse {
  return {
    status,
    headers: { 'content-type': 'application/problem+json' },
    jsonBody: {
      type: `https://sluice.dev/problems/${code}`,
      title: titles[status] ?? 'Error',
      status,
      code,
      detail,
      ...extra,
    },
  };
}

/** 400 from a zod error: names every bad field, the first one as `field`. */
export function zodProblem(error: z.ZodError, code = 'invalid_body', prefix = ''): ProblemResponse {
  const errors = error.issues.map((i) => ({
    field: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(body)',
    message: i.message,
  }));
  const first = errors[0] ?? { field: '(body)', message: 'invalid' };
  return problem(400, code, errors.map((e) => `${e.field}: ${e.message}`).join('; '), {
    field: first.field,
    errors,
  });
}

/**
 * Turns any thrown value into a problem response: errors that carry an HTTP `status` (ValidationError
 * and friends) keep it and their `code`/`field`; anything else is a 500 that hides internals.
 */
export function errorProblem(err: unknown, invocationId?: string): ProblemResponse {
  const e = ensureError(err) as Error & { status?: number; code?: string; field?: string };
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return problem(e.status, e.code ?? 'bad_request', e.message, {
      ...(e.field ? { field: e.field } : {}),
      ...(invocationId ? { invocationId } : {}),
    });
  }
  if (e.name === 'TransientError') {
    return problem(503, e.code ?? 'unavailable', 'A dependency is unavailable; try again shortly.', {
      ...(invocationId ? { invocationId } : {}),
    });
  }
  return problem(500, 'internal_error', 'Internal error; see the host log for this invocation id.', {
    ...(invocationId ? { invocationId } : {}),
  });
}
