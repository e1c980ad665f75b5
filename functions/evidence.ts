import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { withServices } from '../app/services';
import type { EvidenceDeps } from '../lib/evidence/pack';
import { buildEvidencePack } from '../lib/evidence/pack';
import { evidenceHtmlHeaders, renderEvidenceHtml } from '../lib/evidence/html';
import { problem } from '../lib/http/problem';
import type { Services } from '../lib/services';
import { withProblems } from './support/http';
import { refuseUnlessReader } from './support/readAccess';

/**
 * `GET /api/models/{name}/versions/{version}/evidence`: the evidence pack of one model version
 * (lib/evidence/pack.ts). JSON by default; a self-contained HTML page that prints to PDF when the
 * request prefers `text/html` (a browser, the approval page's link). It names reviewers and holds
 * lineage and audit entries, and /api/* is outside App Service Authentication, so only console
 * viewers (Sluice.Viewer) or a reviewer with a valid approval link for this version may read:
 * 401/403 otherwise (functions/support/readAccess.ts, docs/governance.md).
 */

/** True when the Accept header ranks text/html above application/json (or names only HTML). */
export function wantsHtml(accept: string | null): boolean {
  if (!accept) return false;
  const q = (type: string): number => {
    let best = -1;
    for (const part of accept.split(',')) {
      const [media, ...params] = part.trim().toLowerCase().split(';');
      const m = media!.trim();
      if (m !== type && m !== `${type.split('/')[0]}/*` && m !== '*/*') continue;
      const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const value = qp ? Number(qp.slice(2)) : 1;
      // An exact type outranks a wildcard with the same q.
      const score = (Number.isFinite(value) ? value : 0) + (m === type ? 0.0001 : 0);
      best = Math.max(best, score);
    }
    return best;
  };
  return q('text/html') > q('application/json');
}

export function createEvidenceHandler(deps: EvidenceDeps & Pick<Services, 'config' | 'approval'>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const raw = request.params.version ?? '';
    const version = Number(raw);
    if (!/^[1-9][0-9]{0,8}$/.test(raw)) {
      return problem(400, 'invalid_version', `version must be a positive whole number, not "${raw}"`, {
        field: 'version',
      });
    }
    const refused = await refuseUnlessReader(request, deps, { modelName: name, modelVersion: version });
    if (refused) return refused;
    const pack = await buildEvidencePack(deps, name, version);
    if (!pack) {
      return problem(404, 'version_not_found', `model "${name}" has no version ${version}`, {
        field: 'version',
      });
    }
    if (wantsHtml(request.headers.get('accept'))) {
      return { status: 200, headers: evidenceHtmlHeaders(), body: renderEvidenceHtml(pack) };
    }
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: pack };
  };
}

app.http('evidence', {
  route: 'api/models/{name}/versions/{version}/evidence',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withProblems(withServices((s) => createEvidenceHandler(s))),
});
