/**
 * The library floor for bench/scoring: a node:http server that hands each request to the scoring
 * function through the real `@azure/functions` invocation round trip (RPC HTTP data → the library's
 * HttpRequest → handler → HttpResponse → RPC response), as the Azure Node worker does per
 * invocation, and writes the answer. No route table, keys, logging or other host work: no host that
 * runs the programming model can answer faster than this. The model comes from memory.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { installCoreModuleShim } from '../../devhost/app/coreShim';
import { createInvoker } from '../../devhost/app/invoker';
import { createRegistry } from '../../devhost/app/registry';
import type * as Functions from '@azure/functions';
import { registerMemoryScoring } from './memoryModels';

const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
// The shim first: @azure/functions decides at its first registration whether a host is present.
const capture = installCoreModuleShim();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { app } = require('@azure/functions') as typeof Functions;
registerMemoryScoring(app);
const fn = createRegistry(capture.registrations).get('score')!;
const invoker = createInvoker({ capture, log: quiet });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    invoker
      .invokeHttp(fn, {
        method: 'POST',
        url: `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`,
        headers,
        params: { name: 'bench' },
        body: Buffer.concat(chunks),
      })
      .then((r) => {
        res.writeHead(r.status, r.headers);
        res.end(r.body);
      })
      .catch((err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
  });
});
server.listen(0, '127.0.0.1', () => console.log(`floor ready ${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
