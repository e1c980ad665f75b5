/**
 * What devhost answers while it cannot serve yet (the port opens before the embedded services,
 * the app and the Durable engine have started) or no longer (it is stopping): 503 with
 * `Retry-After` and an RFC 9457 problem (`application/problem+json`, like the app's own errors)
 * whose `detail` and `starting` name what is still on its way.
 */
import type { ServerResponse } from 'node:http';

/** The parts of start-up, in order; `starting` lists the ones not done yet. */
export const startupParts = ['services', 'functions', 'durable'] as const;
export type StartupPart = (typeof startupParts)[number];

const describe: Record<StartupPart, string> = {
  services: 'the embedded storage and Cosmos DB emulators',
  functions: "the app's functions",
  durable: 'the Durable engine',
};

export interface NotReadyProblem {
  type: string;
  title: string;
  status: 503;
  code: 'starting' | 'stopping';
  detail: string;
  starting: StartupPart[];
  retryAfterSeconds: number;
}

/** The problem for "still starting `remaining`", or for "stopping" when `remaining` is undefined. */
export function notReadyProblem(remaining: readonly StartupPart[] | undefined): NotReadyProblem {
  const stopping = remaining === undefined;
  return {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    code: stopping ? 'stopping' : 'starting',
    detail: stopping
      ? 'devhost is stopping'
      : `devhost is starting: waiting for ${remaining.map((p) => describe[p]).join(', then ') || 'the HTTP front'}`,
    starting: stopping ? [] : [...remaining],
    retryAfterSeconds: 1,
  };
}

export function sendNotReady(res: ServerResponse, remaining: readonly StartupPart[] | undefined): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(503, {
    'content-type': 'application/problem+json; charset=utf-8',
    'retry-after': '1',
    'cache-control': 'no-store',
  });
  res.end(JSON.stringify(notReadyProblem(remaining)));
}
