import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server on loopback standing for another origin a redirect may point to. */
export interface OtherOrigin {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** `METHOD url` of every request that reached it: a redirect refused leaves this empty. */
  reached: string[];
  close(): Promise<void>;
}

/** Starts another origin that answers every request with `status`, `headers` and `body`. */
export async function startOtherOrigin(
  status: number,
  headers: Record<string, string> = {},
  body = '',
): Promise<OtherOrigin> {
  const reached: string[] = [];
  const server = createServer((req, res) => {
    reached.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.writeHead(status, headers);
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    reached,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
