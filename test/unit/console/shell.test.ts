import { compileRoute } from '../../../devhost/http/routes';
import {
  CONSOLE_ROLES,
  LOCAL_BANNER,
  assetUrl,
  consoleAccess,
  consoleAsset,
  csrfField,
  issueCsrf,
  markup,
  renderPage,
  verifyCsrf,
} from '../../../lib/console';
import { renderRunsPage } from '../../../lib/console/runs';
import type { RunPageFilter, RunSummary } from '../../../lib/runs/store';

function request(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, url, headers: { get: (n: string) => h.get(n.toLowerCase()) ?? null } };
}

function principal(name: string, roles: string[]): string {
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'preferred_username',
      role_typ: 'roles',
      claims: [{ typ: 'preferred_username', val: name }, ...roles.map((r) => ({ typ: 'roles', val: r }))],
    }),
  ).toString('base64');
}

const open = { config: { CONSOLE_OPEN: true, WEBSITE_AUTH_ENABLED: false } };
const azure = { config: { CONSOLE_OPEN: false, WEBSITE_AUTH_ENABLED: true } };

describe('console shell', () => {
  it('renders a full page with nav, banner, strict CSP and no inline script or style', () => {
    const page = renderPage({
      title: 'Runs <x>',
      nav: 'runs',
      banner: LOCAL_BANNER,
      csrf: 'tok',
      body: markup`<p>${'<script>alert(1)</script>'}</p>`,
    });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.body).toContain('<meta name="viewport" content="width=device-width,initial-scale=1" />');
    expect(page.body).toContain('<title>Runs &lt;x&gt; · Sluice</title>');
    expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.body).toContain(LOCAL_BANNER);
    expect(page.body).toContain('<a href="/runs" aria-current="page">Runs</a>');
    for (const label of ['Approvals', 'Models', 'Pipelines']) expect(page.body).toContain(`>${label}</a>`);
    expect(page.body).not.toMatch(/<script>|<style|style="/);
    expect(page.body).toContain(`src="${assetUrl('console.js')}"`);
  });

  it('serves the assets it links, versioned by content', () => {
    const url = new URL(assetUrl('console.css'), 'http://x');
    const css = consoleAsset(url.pathname.split('/').pop()!);
    expect(css?.contentType).toMatch(/^text\/css/);
    expect(url.searchParams.get('v')).toBe(css?.version);
    expect(consoleAsset('../secret')).toBeUndefined();
  });

  it('root route: "{ignored:maxlength(0)?}" matches / and nothing else (devhost routing)', () => {
    const route = compileRoute('{ignored:maxlength(0)?}', '');
    expect(route.match('/')).toEqual({});
    expect(route.match('')).toEqual({});
    expect(route.match('/runs')).toBeUndefined();
  });

  it('access: open locally with the banner; Easy Auth roles decide in Azure', () => {
    const local = consoleAccess(request('http://localhost:7071/runs'), open);
    expect(local).toMatchObject({ canView: true, canOperate: true, local: true, banner: LOCAL_BANNER });

    const none = consoleAccess(request('https://app/runs'), azure);
    expect(none).toMatchObject({ canView: false, canOperate: false });
    const viewer = consoleAccess(
      request('https://app/runs', {
        'x-ms-client-principal': principal('ana@x.com', [CONSOLE_ROLES.viewer]),
      }),
      azure,
    );
    expect(viewer).toMatchObject({ who: 'ana@x.com', canView: true, canOperate: false, local: false });
    const op = consoleAccess(
      request('https://app/runs', {
        'x-ms-client-principal': principal('bo@x.com', [CONSOLE_ROLES.operator]),
      }),
      azure,
    );
    expect(op).toMatchObject({ canView: true, canOperate: true });
    const noRole = consoleAccess(
      request('https://app/runs', { 'x-ms-client-principal': principal('cy@x.com', []) }),
      azure,
    );
    expect(noRole).toMatchObject({ canView: false, canOperate: false });
    // Without the platform's authentication the headers are anyone's: not trusted.
    const forged = consoleAccess(
      request('https://app/runs', {
        'x-ms-client-principal': principal('eve@x.com', [CONSOLE_ROLES.operator]),
      }),
      { config: { CONSOLE_OPEN: false, WEBSITE_AUTH_ENABLED: false } },
    );
    expect(forged).toMatchObject({ canView: false, canOperate: false });
  });

  it('anti-forgery: cookie and field must match and the origin must be this one', () => {
    const grant = issueCsrf(request('http://localhost:7071/runs'));
    expect(grant.cookie).toMatchObject({
      name: 'sluice-csrf',
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
    });
    const cookie = `sluice-csrf=${grant.token}`;
    expect(issueCsrf(request('http://localhost:7071/runs', { cookie })).cookie).toBeUndefined();
    expect(csrfField(grant.token).value).toContain(`name="csrf" value="${grant.token}"`);
    expect(issueCsrf(request('https://app.example/runs')).cookie?.name).toBe('__Host-sluice-csrf');

    const post = (headers: Record<string, string>) =>
      request('http://localhost:7071/runs/r1/cancel', headers, 'POST');
    const form = new URLSearchParams({ csrf: grant.token });
    expect(() => verifyCsrf(post({ cookie, origin: 'http://localhost:7071' }), form)).not.toThrow();
    expect(() => verifyCsrf(post({ cookie, referer: 'http://localhost:7071/runs/r1' }), form)).not.toThrow();
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        return (e as { code: string; status: number }).code;
      }
      return 'none';
    };
    expect(code(() => verifyCsrf(post({ cookie }), form))).toBe('origin_missing');
    expect(code(() => verifyCsrf(post({ cookie, origin: 'http://evil.test' }), form))).toBe(
      'origin_mismatch',
    );
    expect(code(() => verifyCsrf(post({ origin: 'http://localhost:7071' }), form))).toBe(
      'csrf_cookie_missing',
    );
    expect(
      code(() =>
        verifyCsrf(
          post({ cookie, origin: 'http://localhost:7071' }),
          new URLSearchParams({ csrf: 'x'.repeat(43) }),
        ),
      ),
    ).toBe('csrf_mismatch');
    expect(
      code(() =>
        verifyCsrf(request('http://localhost:7071/runs', { cookie, origin: 'http://localhost:7071' }), form),
      ),
    ).toBe('method_not_allowed');
  });

  it('Runs page: rows, filters kept, the next-page cursor, a bad filter named', async () => {
    const seen: RunPageFilter[] = [];
    const runs: RunSummary[] = [
      {
        id: 'r2',
        pipeline: 'churn',
        pipelineVersion: 3,
        status: 'running',
        createdAt: '2026-12-05T08:00:00.000Z',
        trigger: { kind: 'cli', by: 'ana' },
      },
      {
        id: 'r1',
        pipeline: 'churn',
        pipelineVersion: 3,
        status: 'stopped',
        stopReason: 'validation_failed',
        createdAt: '2026-12-05T07:00:00.000Z',
        endedAt: '2026-12-05T07:00:42.000Z',
        trigger: { kind: 'http', by: 'anonymous' },
      },
    ];
    const deps = {
      runs: {
        page: async (f: RunPageFilter) => {
          seen.push(f);
          return { runs, next: '2026-12-05T07:00:00.000Z' };
        },
      },
      now: () => new Date('2026-12-05T08:01:00.000Z'),
    };
    const page = await renderRunsPage(
      deps,
      new URLSearchParams('pipeline=churn&from=2026-12-05&to=2026-12-05'),
      {
        banner: LOCAL_BANNER,
      },
    );
    expect(seen[0]).toEqual({
      pipeline: 'churn',
      from: '2026-12-05T00:00:00.000Z',
      to: '2026-12-06T00:00:00.000Z',
    });
    // The row links the page that names the pipeline (one point read; /runs/{id} redirects there).
    expect(page.body).toContain('href="/runs/churn/r2"');
    expect(page.body).toContain('data-run-status="r2"');
    expect(page.body).toContain('validation failed');
    expect(page.body).toContain('42 s');
    expect(page.body).toContain('60 s so far');
    expect(page.body).toContain('data-poll-list="/api/runs?limit=50&amp;pipeline=churn"');
    expect(page.body).toContain(
      'href="/runs?pipeline=churn&amp;from=2026-12-05&amp;to=2026-12-05&amp;before=2026-12-05T07%3A00%3A00.000Z"',
    );
    await expect(renderRunsPage(deps, new URLSearchParams('status=nope'), {})).rejects.toMatchObject({
      code: 'invalid_filter',
      message: expect.stringContaining('status'),
    });
  });
});
