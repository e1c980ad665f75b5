/**
 * Issue 13, "Chunked bodies are buffered whole": six concurrent 95 MB uploads took devhost from 290 MB to
 * 2.2 GB. For a function that does not stream, devhost holds request bodies within one budget
 * (`DEVHOST_BUFFERED_BODY_BUDGET`) and answers 503 with `Retry-After` to a body that does not fit; a
 * body over the per-request limit answers 413. Nothing of a refused body reaches the function.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { startDevhost, type RunningDevhost } from '../support/devhost';

const KB = 1024;
const budget = 1024 * KB;
const limit = 800 * KB;

let host: RunningDevhost;
beforeAll(async () => {
  host = await startDevhost({
    app: 'test/fixtures/basic',
    services: false,
    env: {
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(limit),
      DEVHOST_BUFFERED_BODY_BUDGET: String(budget),
    },
  });
});
afterAll(async () => {
  await host?.stop();
});

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function answerOf(req: ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    // The server may close while the client still sends a refused body; the answer arrived first.
    req.once('error', (err) => reject(err));
  });
}

/** A POST to the buffering `upload` function: chunked unless `declared` gives a Content-Length. */
function upload(declared?: number): { req: ClientRequest; answer: Promise<Answer> } {
  const req = httpRequest(`${host.url}/api/upload`, {
    method: 'POST',
    headers: declared === undefined ? { 'transfer-encoding': 'chunked' } : { 'content-length': declared },
  });
  return { req, answer: answerOf(req) };
}

const executions = (): number => host.output().split("Executed 'Functions.upload'").length - 1;

test('Chunked bodies are buffered whole: a body that does not fit the budget gets 503 with Retry-After', async () => {
  // A holds 700 KB of the 1 MB budget: declared, so devhost reserves it before reading.
  const a = upload(700 * KB);
  a.req.write(Buffer.alloc(100 * KB, 1));
  try {
    await whileAHoldsTheBudget(a);
  } finally {
    // On failure, A must not stay open (it would keep devhost and this test process waiting).
    a.answer.catch(() => undefined);
    if (!a.req.writableFinished) a.req.destroy();
  }
});

async function whileAHoldsTheBudget(a: { req: ClientRequest; answer: Promise<Answer> }): Promise<void> {
  const start = executions();
  // B (400 KB) does not fit next to A. Sent until devhost has seen A's headers.
  let refused: Answer | undefined;
  let acceptedB = 0;
  for (let i = 0; i < 50 && !refused; i++) {
    const b = upload(400 * KB);
    b.req.end(Buffer.alloc(400 * KB, 2));
    const answer = await b.answer.catch(() => undefined);
    if (answer?.status === 503) refused = answer;
    else {
      expect(answer?.status).toBe(200); // before A's headers arrived, B fits
      acceptedB += 1;
    }
  }
  expect(refused).toBeDefined();
  expect(refused!.headers['retry-after']).toBe('2');
  expect(JSON.parse(refused!.body)).toEqual({
    error: `devhost is already holding its budget of ${budget} bytes of request bodies; retry later (DEVHOST_BUFFERED_BODY_BUDGET)`,
  });

  // A chunked body that outgrows what is left is refused part-way, and gives its bytes back.
  const c = upload();
  c.req.write(Buffer.alloc(200 * KB, 3));
  c.req.write(Buffer.alloc(200 * KB, 3));
  c.req.end();
  expect((await c.answer).status).toBe(503);

  a.req.end(Buffer.alloc(600 * KB, 1));
  const done = await a.answer;
  expect([done.status, JSON.parse(done.body)]).toEqual([200, { bytes: 700 * KB }]);

  // With A done its bytes are free again: the same bodies now pass.
  const retry = upload(400 * KB);
  retry.req.end(Buffer.alloc(400 * KB, 2));
  expect((await retry.answer).status).toBe(200);
  const chunked = upload();
  chunked.req.write(Buffer.alloc(200 * KB, 3));
  chunked.req.end(Buffer.alloc(200 * KB, 3));
  const chunkedAnswer = await chunked.answer;
  expect([chunkedAnswer.status, JSON.parse(chunkedAnswer.body)]).toEqual([200, { bytes: 400 * KB }]);
  // Nothing of a refused body reached the function: it ran for A, the retry, the chunked body and
  // the Bs that fitted, and for neither refused one (the log line may lag the answer).
  const expected = start + acceptedB + 3;
  for (let i = 0; i < 800 && executions() < expected; i++) await new Promise((r) => setTimeout(r, 25));
  expect(executions()).toBe(expected);
}

test('a chunked body past the per-request limit gets 413 and the function does not run', async () => {
  const before = executions();
  const big = upload();
  for (let i = 0; i < 9; i++) big.req.write(Buffer.alloc(100 * KB, 4));
  big.req.end();
  const answer = await big.answer;
  expect(answer.status).toBe(413);
  const ok = upload();
  ok.req.end(Buffer.alloc(limit, 5));
  expect(JSON.parse((await ok.answer).body)).toEqual({ bytes: limit });
  // Only the accepted upload ran.
  for (let i = 0; i < 800 && executions() < before + 1; i++) await new Promise((r) => setTimeout(r, 25));
  expect(executions()).toBe(before + 1);
});
