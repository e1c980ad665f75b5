import { createHmac, createVerify, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the GitHub REST API a custom deployment protection rule's App uses, on
 * loopback HTTP, with GitHub's documented wire shapes:
 *
 *   POST /app/installations/{installation_id}/access_tokens   Authorization: Bearer <App JWT>
 *        → 201 {"token","expires_at"}; the JWT must be RS256, signed with the App's key, iss = the
 *        App id, and live at most 10 minutes; otherwise 401
 *   GET  /repos/{owner}/{repo}/contents/{path}?ref={sha}   Authorization: Bearer <installation token>
 *        → 200 {"type":"file","encoding":"base64","content",...} for a committed file; else 404
 *   POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule
 *        Authorization: Bearer <installation token>; {"environment_name","state","comment"}
 *        → 204; an unknown run 404, a bad body 422, a token of another installation 401
 *
 * It also builds what GitHub sends the App: `deployment_protection_rule` events signed with the
 * webhook secret in `X-Hub-Signature-256`.
 */

export interface Review {
  repository: string;
  runId: number;
  environment: string;
  state: string;
  comment: string;
}

export interface PendingDeployment {
  /** The event body GitHub posts to the App's webhook. */
  event: Record<string, unknown>;
  runId: number;
}

export interface FakeGitHub {
  apiUrl: string;
  appId: string;
  /** The App's private key (PEM), as GITHUB_APP_PRIVATE_KEY holds it. */
  privateKey: string;
  installationId: number;
  /** A workflow job waiting on the environment's protection rule; `payload` is the deployment's payload. */
  pendingDeployment(init: {
    environment?: string;
    payload?: unknown;
    repository?: string;
    sha?: string;
  }): PendingDeployment;
  /** Puts a file in a commit of a repository. */
  commitFile(repository: string, sha: string, path: string, content: string): void;
  /** The headers GitHub sends with a delivery of `body`, signed with `secret`. */
  deliveryHeaders(body: string, secret: string, event?: string): Record<string, string>;
  failNext(count: number, status: number): void;
  reviews: Review[];
  tokensIssued: number;
  requests: { method: string; path: string; status: number }[];
  stop(): Promise<void>;
}

function verifyJwt(jwt: string, publicKey: string, appId: string): boolean {
  const parts = jwt.split('.');
  if (parts.length !== 3) return false;
  const [h, p, sig] = parts as [string, string, string];
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as {
      iat?: number;
      exp?: number;
      iss?: string | number;
    };
    if (header.alg !== 'RS256' || String(payload.iss) !== appId) return false;
    if (typeof payload.iat !== 'number' || typeof payload.exp !== 'number') return false;
    if (payload.exp - payload.iat > 600 || payload.exp <= payload.iat) return false;
    const verifier = createVerify('RSA-SHA256');
    verifier.update(`${h}.${p}`);
    return verifier.verify(publicKey, Buffer.from(sig, 'base64url'));
  } catch {
    return false;
  }
}

export async function startFakeGitHub(): Promise<FakeGitHub> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const appId = '424242';
  const installationId = 9001;
  const tokens = new Set<string>();
  const runs = new Map<string, { environments: Set<string> }>();
  const files = new Map<string, string>();
  const reviews: Review[] = [];
  const requests: FakeGitHub['requests'] = [];
  let failures = { count: 0, status: 503 };
  let nextRun = 7_000_000;
  let tokensIssued = 0;

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    const send = (status: number, json?: unknown): void => {
      requests.push({ method: req.method ?? '', path, status });
      res.writeHead(status, json === undefined ? {} : { 'content-type': 'application/json' });
      res.end(json === undefined ? undefined : JSON.stringify(json));
    };
    if (failures.count > 0) {
      failures = { ...failures, count: failures.count - 1 };
      return send(failures.status, { message: 'injected failure' });
    }
    const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const tokenRoute = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    if (req.method === 'POST' && tokenRoute) {
      if (!verifyJwt(bearer, publicKey, appId)) {
        return send(401, { message: 'A JSON web token could not be decoded' });
      }
      if (Number(tokenRoute[1]) !== installationId) return send(404, { message: 'Not Found' });
      const token = `ghs_${randomUUID().replaceAll('-', '')}`;
      tokens.add(token);
      tokensIssued++;
      return send(201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString() });
    }
    const contentsRoute = /^\/repos\/([^/]+\/[^/]+)\/contents\/(.+)$/.exec(path);
    if (req.method === 'GET' && contentsRoute) {
      if (!tokens.has(bearer)) return send(401, { message: 'Bad credentials' });
      const ref = new URL(req.url ?? '/', 'http://fake').searchParams.get('ref') ?? '';
      const content = files.get(`${contentsRoute[1]}@${ref}:${contentsRoute[2]}`);
      if (content === undefined) return send(404, { message: 'Not Found' });
      return send(200, {
        type: 'file',
        encoding: 'base64',
        path: contentsRoute[2],
        size: Buffer.byteLength(content),
        content: Buffer.from(content)
          .toString('base64')
          .replace(/(.{60})/g, '$1\n'),
      });
    }
    const ruleRoute = /^\/repos\/([^/]+\/[^/]+)\/actions\/runs\/(\d+)\/deployment_protection_rule$/.exec(
      path,
    );
    if (req.method === 'POST' && ruleRoute) {
      if (!tokens.has(bearer)) return send(401, { message: 'Bad credentials' });
      const run = runs.get(`${ruleRoute[1]}#${ruleRoute[2]}`);
      if (!run) return send(404, { message: 'Not Found' });
      let json: { environment_name?: unknown; state?: unknown; comment?: unknown };
      try {
        json = JSON.parse(body) as typeof json;
      } catch {
        return send(400, { message: 'Problems parsing JSON' });
      }
      if (
        typeof json.environment_name !== 'string' ||
        !run.environments.has(json.environment_name) ||
        (json.state !== 'approved' && json.state !== 'rejected') ||
        (json.comment !== undefined && typeof json.comment !== 'string')
      ) {
        return send(422, { message: 'Validation Failed' });
      }
      reviews.push({
        repository: ruleRoute[1]!,
        runId: Number(ruleRoute[2]),
        environment: json.environment_name,
        state: json.state,
        comment: (json.comment as string | undefined) ?? '',
      });
      return send(204);
    }
    return send(404, { message: 'Not Found' });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeGitHub = {
    apiUrl,
    appId,
    privateKey,
    installationId,
    pendingDeployment: ({
      environment = 'production',
      payload = {},
      repository = 'contoso/churn-app',
      sha = randomUUID().replaceAll('-', '').padEnd(40, '0'),
    }) => {
      const runId = nextRun++;
      runs.set(`${repository}#${runId}`, { environments: new Set([environment]) });
      const [owner] = repository.split('/');
      return {
        runId,
        event: {
          action: 'requested',
          environment,
          event: 'push',
          deployment_callback_url: `${apiUrl}/repos/${repository}/actions/runs/${runId}/deployment_protection_rule`,
          deployment: {
            id: runId + 1,
            environment,
            payload,
            ref: 'main',
            sha,
            task: 'deploy',
          },
          repository: { full_name: repository, name: repository.split('/')[1], owner: { login: owner } },
          installation: { id: installationId },
          sender: { login: 'octocat' },
        },
      };
    },
    deliveryHeaders: (body, secret, event = 'deployment_protection_rule') => ({
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
    }),
    commitFile: (repository, sha, path, content) => {
      files.set(`${repository}@${sha}:${path}`, content);
    },
    failNext: (count, status) => {
      failures = { count, status };
    },
    reviews,
    get tokensIssued() {
      return tokensIssued;
    },
    requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
