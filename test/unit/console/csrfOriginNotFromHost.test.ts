/**
 * Security review: the console's Origin check must not trust the request's own Host (a page on a
 * name that resolves to this machine, DNS rebinding, sends a matching Origin and Host). With a
 * public PUBLIC_BASE_URL only that origin may post; an open / local console must be reached on a
 * loopback name.
 */
import { issueCsrf, verifyCsrf } from '../../../lib/console';

function post(url: string, headers: Record<string, string>) {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: 'POST', url, headers: { get: (n: string) => h.get(n.toLowerCase()) ?? null } };
}
const outcome = (fn: () => void): string => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return (e as { code: string }).code;
  }
};

const grant = issueCsrf(post('http://localhost:7071/runs', {}));
const cookie = `sluice-csrf=${grant.token}`;
const form = new URLSearchParams({ csrf: grant.token });

describe('console CSRF origin', () => {
  it('with a public PUBLIC_BASE_URL, only that origin, whatever Host the request names', () => {
    const pub = { publicBaseUrl: 'https://sluice.example.com' };
    const secure = `__Host-sluice-csrf=${grant.token}`;
    const at = (host: string, origin: string) =>
      post(`https://${host}/runs/r1/cancel`, { host, origin, cookie: secure });
    expect(outcome(() => verifyCsrf(at('sluice.example.com', 'https://sluice.example.com'), form, pub))).toBe(
      'ok',
    );
    expect(outcome(() => verifyCsrf(at('evil.test', 'https://evil.test'), form, pub))).toBe(
      'origin_mismatch',
    );
    expect(
      outcome(() =>
        verifyCsrf(at('sluice-app.azurewebsites.net', 'https://sluice-app.azurewebsites.net'), form, pub),
      ),
    ).toBe('origin_mismatch');
  });

  it('a rebinding name on the open local console is refused, even with a matching Origin and Host', () => {
    const rebound = post('http://rebind.evil.test:7071/runs/r1/cancel', {
      host: 'rebind.evil.test:7071',
      origin: 'http://rebind.evil.test:7071',
      cookie,
    });
    expect(outcome(() => verifyCsrf(rebound, form, { open: true }))).toBe('console_not_local');
    expect(
      outcome(() => verifyCsrf(rebound, form, { publicBaseUrl: 'http://localhost:7071', open: true })),
    ).toBe('console_not_local');
    // Without the open flag, a loopback PUBLIC_BASE_URL still means a local console.
    expect(outcome(() => verifyCsrf(rebound, form, { publicBaseUrl: 'http://localhost:7071' }))).toBe(
      'console_not_local',
    );
  });

  it('the local console takes its forms on localhost, 127.0.0.1 and [::1]', () => {
    const opts = { publicBaseUrl: 'http://localhost:7071', open: true };
    for (const host of ['localhost:7071', '127.0.0.1:7071', '[::1]:7071']) {
      const req = post(`http://${host}/runs/r1/cancel`, { host, origin: `http://${host}`, cookie });
      expect(outcome(() => verifyCsrf(req, form, opts))).toBe('ok');
    }
    // The page on 127.0.0.1 posting to localhost (both this machine, PUBLIC_BASE_URL's port).
    const cross = post('http://localhost:7071/runs/r1/cancel', {
      host: 'localhost:7071',
      origin: 'http://127.0.0.1:7071',
      cookie,
    });
    expect(outcome(() => verifyCsrf(cross, form, opts))).toBe('ok');
    // Another local port is another origin.
    const other = post('http://localhost:7071/runs/r1/cancel', {
      host: 'localhost:7071',
      origin: 'http://localhost:3000',
      cookie,
    });
    expect(outcome(() => verifyCsrf(other, form, opts))).toBe('origin_mismatch');
  });

  it('a forwarded host that is not loopback does not pass as local', () => {
    const req = post('http://localhost:7071/runs/r1/cancel', {
      host: 'localhost:7071',
      'x-forwarded-host': 'evil.test',
      origin: 'http://evil.test',
      cookie,
    });
    expect(outcome(() => verifyCsrf(req, form, { open: true }))).toBe('console_not_local');
  });
});
