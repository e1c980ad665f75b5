import { gzipSync } from 'node:zlib';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { inferContractHandler } from '../../../functions/inferContract';
import { CONTRACT_HEADER, validateDatasetHandler } from '../../../functions/checkDataset';
import { withProblems } from '../../../functions/support/http';
import type { DatasetContract, DatasetContractInput } from '../../../lib/contracts/datasetContract';
import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import type { DataDeps } from '../../../lib/data/datasets';
import { defaultLimits } from '../../../lib/data/limits';
import type { ValidationReport } from '../../../lib/data/checking/report';

const contract: DatasetContractInput = {
  columns: [
    { name: 'species', type: 'category', values: ['Adelie', 'Gentoo'] },
    { name: 'mass', type: 'number', min: 2000, max: 7000, nullable: true },
  ],
};

function deps(limits = defaultLimits): () => Promise<DataDeps> {
  const d: DataDeps = {
    store: undefined as never, // the default drift reference never touches storage
    limits,
    contractOf: async (name) => (name === 'penguins' ? parseDatasetContract(contract) : undefined),
  };
  return async () => d;
}

function request(
  query: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): HttpRequest {
  return new HttpRequest({
    url: `http://localhost/api/datasets/validate${query}`,
    method: 'POST',
    headers,
    body: typeof body === 'string' ? { string: body } : { bytes: body },
  });
}

const call = (req: HttpRequest, d = deps()) =>
  withProblems(validateDatasetHandler(d))(req, new InvocationContext());

describe('POST /api/datasets/validate', () => {
  it('returns the report for a pipeline: violations with rows, statistics, drift skipped with the reason', async () => {
    const res = await call(
      request('?pipeline=penguins', 'species,mass\nAdelie,3750\nGentoo,NA\nChinstrap,9000\n', {
        'content-type': 'text/csv',
      }),
    );
    expect(res.status).toBe(200);
    const report = res.jsonBody as ValidationReport;
    expect(report.summary).toMatchObject({ status: 'failed', errors: 2, drift: 'skipped' });
    expect(report.violations.map((v) => [v.rule, v.column, v.firstRows])).toEqual([
      ['values', 'species', [3]],
      ['max', 'mass', [3]],
    ]);
    expect(report.columns[1]).toMatchObject({ name: 'mass', nulls: 1, numeric: { min: 3750, max: 9000 } });
    expect(report.drift).toMatchObject({
      status: 'skipped',
      reason: expect.stringContaining('no reference'),
    });
  });

  it('takes JSON Lines and gzip bodies', async () => {
    const jsonl = '{"species":"Adelie","mass":3000}\n{"species":"Gentoo","mass":null}\n';
    const res = await call(request('?pipeline=penguins', jsonl, { 'content-type': 'application/x-ndjson' }));
    expect((res.jsonBody as ValidationReport).summary.status).toBe('passed');
    const gz = await call(request('?pipeline=penguins', gzipSync('species,mass\nAdelie,3000\n')));
    expect((gz.jsonBody as ValidationReport).dataset).toMatchObject({ rows: 1, format: 'csv' });
  });

  it('takes an inline contract in a header when no pipeline is named', async () => {
    const header = Buffer.from(
      JSON.stringify({ columns: [{ name: 'a', type: 'integer', min: 0 }] }),
    ).toString('base64url');
    const res = await call(request('', 'a\n1\n-1\n', { [CONTRACT_HEADER]: header }));
    expect((res.jsonBody as ValidationReport).violations[0]).toMatchObject({
      rule: 'min',
      column: 'a',
      firstRows: [2],
    });
  });

  it('answers hostile input with its code as a problem', async () => {
    const res = await call(request('?pipeline=penguins', 'species,mass\nAdelie\n'));
    expect(res.status).toBe(400);
    expect(res.jsonBody).toMatchObject({ code: 'CSV_RAGGED_ROW', field: 'body' });
  });

  it('refuses an upload over the size cap from Content-Length, before reading the body', async () => {
    let read = false;
    // highWaterMark 0: the stream pulls only when someone reads it.
    const body = new ReadableStream<Uint8Array>(
      {
        pull() {
          read = true;
          throw new Error('the body must not be read');
        },
      },
      { highWaterMark: 0 },
    );
    const req = request('?pipeline=penguins', 'species,mass\n', { 'content-length': '999999999' });
    Object.defineProperty(req, 'body', { get: () => body });
    const res = await call(req, deps({ ...defaultLimits, maxBytes: 1000 }));
    expect(res.status).toBe(413);
    expect(res.jsonBody).toMatchObject({ code: 'INPUT_TOO_LARGE' });
    expect(read).toBe(false);
  });

  it('404 for an unknown pipeline, 400 without any contract', async () => {
    expect((await call(request('?pipeline=nope', 'a\n1\n'))).status).toBe(404);
    expect((await call(request('', 'a\n1\n'))).jsonBody).toMatchObject({ code: 'contract_required' });
  });
});

describe('POST /api/datasets/infer', () => {
  const infer = (query: string, body: string) =>
    withProblems(inferContractHandler(async () => ({ limits: defaultLimits })))(
      new HttpRequest({
        url: `http://localhost/api/datasets/infer${query}`,
        method: 'POST',
        body: { string: body },
      }),
      new InvocationContext(),
    );

  it('proposes a contract from a sample, with the target and its task', async () => {
    const res = await infer('?target=y', 'x,kind,y\n1.5,a,0\n2,b,1\n,a,1\n');
    expect(res.status).toBe(200);
    const body = res.jsonBody as { contract: DatasetContract; sample: { rows: number } };
    expect(body.sample.rows).toBe(3);
    expect(body.contract).toMatchObject({ target: 'y', task: 'binary' });
    expect(body.contract.columns.map((c) => [c.name, c.type, c.nullable])).toEqual([
      ['x', 'number', true],
      ['kind', 'category', false],
      ['y', 'integer', false],
    ]);
    expect(() => parseDatasetContract(body.contract)).not.toThrow();
  });

  it('names an unknown target or task as the bad field', async () => {
    expect((await infer('?target=zz', 'a\n1\n')).jsonBody).toMatchObject({
      code: 'unknown_target',
      field: 'target',
    });
    expect((await infer('?task=ranking', 'a\n1\n')).jsonBody).toMatchObject({
      code: 'invalid_task',
      field: 'task',
    });
  });
});
