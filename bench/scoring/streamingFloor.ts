/**
 * The streaming floor for bench/scoring: the library floor (floor.ts) with `app.setup({ enableHttpStream:
 * true })`, as Sluice runs. The library then serves an HTTP proxy in the worker and takes the request,
 * and gives the response, only through it; the RPC invocation carries just the trigger metadata. Per
 * request this node:http server does what any host must do in that mode and nothing else: forward the
 * request to the proxy tagged `x-ms-invocation-id` (keep-alive connections), run the invocation
 * through the library's InvocationModel (getArguments → handler → getResponse), relay the proxy's
 * answer. It does not use devhost's invoker, so it stays a floor for devhost's own streaming hop: no
 * host running the programming model with streaming on can answer faster. The model comes from memory.
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { installCoreModuleShim, type ProgrammingModelLike } from '../../devhost/app/coreShim';
import { listenOnLoopbackDuring, loopbackUri } from '../../devhost/app/loopbackListen';
import { createRegistry } from '../../devhost/app/registry';
import type * as Functions from '@azure/functions';
import { registerMemoryScoring } from './memoryModels';

// The shim first: @azure/functions decides at its first registration whether a host is present.
const capture = installCoreModuleShim();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { app } = require('@azure/functions') as typeof Functions;
app.setup({ enableHttpStream: true });
registerMemoryScoring(app);
const fn = createRegistry(capture.registrations).get('score')!;
const model = fn.programmingModel as ProgrammingModelLike;
const metadata = { name: fn.metadata.name, bindings: fn.metadata.bindings };
const agent = new Agent({ keepAlive: true });
const ignore = () => undefined;

/** Runs one invocation as the worker does; with streaming on, the handler's response goes to the proxy. */
async function invoke(invocationId: string, headers: string): Promise<void> {
  const coreCtx = {
    invocationId,
    metadata,
    request: {
      invocationId,
      functionId: fn.name,
      inputData: [{ name: fn.triggerBindingName }],
      triggerMetadata: { Headers: { json: headers }, name: { string: 'bench' } },
    },
    state: undefined,
    log: ignore,
  };
  const invocation = await model.getInvocationModel(coreCtx);
  const { context, inputs } = await invocation.getArguments();
  const result = await invocation.invokeFunction(context, inputs, fn.callback);
  await invocation.getResponse(context, result);
}

async function main(): Promise<void> {
  const capabilities = (await listenOnLoopbackDuring(async () => model.getCapabilities?.({}))) ?? {};
  if (!capabilities.HttpUri) throw new Error('the library reported no HttpUri: streaming is off');
  const proxy = new URL(loopbackUri(capabilities.HttpUri));

  const server = createServer((req, res) => {
    const invocationId = randomUUID();
    const proxyRequest = httpRequest({
      agent,
      host: proxy.hostname,
      port: proxy.port,
      method: req.method,
      path: req.url,
      headers: {
        ...req.headers,
        'x-ms-invocation-id': invocationId,
        'x-forwarded-host': req.headers.host ?? 'localhost',
        'x-forwarded-proto': 'http',
      },
    });
    proxyRequest.once('response', (proxied: IncomingMessage) => {
      // Hop-by-hop headers and the tag stay between the host and the proxy.
      const {
        'x-ms-invocation-id': _id,
        connection: _c,
        'keep-alive': _k,
        'transfer-encoding': _t,
        ...headers
      } = proxied.headers;
      res.writeHead(proxied.statusCode ?? 200, headers);
      proxied.pipe(res);
    });
    proxyRequest.once('error', () => res.destroy());
    req.pipe(proxyRequest);
    invoke(invocationId, JSON.stringify(req.headers)).catch((err: unknown) => {
      proxyRequest.destroy();
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  server.listen(0, '127.0.0.1', () =>
    console.log(`streamingFloor ready ${(server.address() as AddressInfo).port}`),
  );
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
