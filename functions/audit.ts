import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { withServices } from '../app/services';
import type { AuditLog } from '../lib/audit/log';
import { problem } from '../lib/http/problem';
import { withProblems } from './support/http';

/**
 * `GET /api/audit` (function key): the audit trail, newest first, `limit` entries a page (1-500,
 * default 50), `subject` to keep one subject and everything under it (`model/churn`,
 * `model/churn/3`, `pipeline/churn`), `before` = the previous page's `next`.
 *
 * `GET /api/audit?verify=true`: walks the whole chain and its anchors and answers `valid: true`
 * with the head, or `valid: false` with the first bad entry and what was done to it (edited,
 * deleted, reordered, truncated). 200 either way: the answer is the verdict, not an error.
 */
export function createAuditHandler(deps: { audit: Pick<AuditLog, 'page' | 'verify'> }) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const q = request.query;
    const verify = q.get('verify');
    if (verify !== null && verify !== 'true' && verify !== 'false') {
      return problem(400, 'invalid_query', `verify must be true or false, not "${verify}"`, {
        field: 'verify',
      });
    }
    if (verify === 'true') {
      return { jsonBody: { checkedAt: new Date().toISOString(), ...(await deps.audit.verify()) } };
    }
    const int = (name: string): number | undefined | HttpResponseInit => {
      const raw = q.get(name);
      if (raw === null) return undefined;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1) {
        return problem(400, 'invalid_query', `${name} must be a positive whole number, not "${raw}"`, {
          field: name,
        });
      }
      return n;
    };
    const limit = int('limit');
    if (typeof limit === 'object') return limit;
    const before = int('before');
    if (typeof before === 'object') return before;
    if (limit !== undefined && limit > 500) {
      return problem(400, 'invalid_query', `limit is at most 500, not ${limit}`, { field: 'limit' });
    }
    const subject = q.get('subject')?.trim() || undefined;
    if (subject && subject.length > 300) {
      return problem(400, 'invalid_query', 'subject is at most 300 characters', { field: 'subject' });
    }
    const page = await deps.audit.page({
      ...(subject ? { subject } : {}),
      ...(before ? { before } : {}),
      ...(limit ? { limit } : {}),
    });
    return { jsonBody: page };
  };
}

app.http('audit', {
  route: 'api/audit',
  methods: ['GET'],
  authLevel: 'function',
  handler: withProblems(withServices((s) => createAuditHandler(s))),
});
