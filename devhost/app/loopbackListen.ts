/**
 * `@azure/functions` starts its HTTP streaming proxy (spec §3.A) with `server.listen()` and no host, so
 * Node binds it on every interface. In Azure that port is inside the worker's sandbox; on a laptop it
 * would be open to the network while devhost itself listens on loopback only. While `fn` runs (the
 * library's `getCapabilities`, where the proxy is started), a `listen` that names no host is given the
 * IPv4 loopback address. Calls that name a host, a path (Unix socket) or a handle are left alone.
 */
import { Server } from 'node:net';

export const PROXY_LOOPBACK = '127.0.0.1';

type Listen = (this: Server, ...args: unknown[]) => Server;

function withLoopbackHost(args: unknown[]): unknown[] {
  const [first, second] = args;
  if (args.length === 0 || typeof first === 'function') return [0, PROXY_LOOPBACK, ...args];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port), listen(port, cb), listen(port, backlog, cb): a host, when given, is a string.
    if (typeof second === 'string') return args;
    return [first, PROXY_LOOPBACK, ...args.slice(1)];
  }
  if (first !== null && typeof first === 'object' && !('path' in first) && !('handle' in first)) {
    const options = first as { host?: string; fd?: number };
    if (options.host === undefined && options.fd === undefined) {
      return [{ ...options, host: PROXY_LOOPBACK }, ...args.slice(1)];
    }
  }
  return args;
}

export async function listenOnLoopbackDuring<T>(fn: () => Promise<T>): Promise<T> {
  const original = Server.prototype.listen as unknown as Listen;
  const patched: Listen = function (this: Server, ...args: unknown[]) {
    return original.apply(this, withLoopbackHost(args));
  };
  Server.prototype.listen = patched as unknown as Server['listen'];
  try {
    return await fn();
  } finally {
    if ((Server.prototype.listen as unknown) === patched) {
      Server.prototype.listen = original as unknown as Server['listen'];
    }
  }
}

/** The proxy's URI as the library reports it (`http://localhost:P/`), pinned to the address it is bound on. */
export function loopbackUri(uri: string): string {
  const url = new URL(uri);
  if (url.hostname === 'localhost') url.hostname = PROXY_LOOPBACK;
  return url.toString();
}
