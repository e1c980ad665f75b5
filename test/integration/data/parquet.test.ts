import { HttpRequest } from '@azure/functions';
import type * as Writer from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import { ingestDataset } from '../../../activities/ingestDataset';
import { validateDataset } from '../../../activities/validateDataset';
import { inferContractHandler } from '../../../functions/inferContract';
import { validateDatasetHandler } from '../../../functions/checkDataset';
import type { DatasetContract } from '../../../lib/contracts/datasetContract';
import { DATASETS_CONTAINER, loadColumnar, storeRawUpload } from '../../../lib/data/datasets';
import type { DataDeps } from '../../../lib/data/datasets';
import type { ValidationReport } from '../../../lib/data/checking/report';
import type { ArtifactStore } from '../../../lib/storage/blob';
import {
  blobSnapshot,
  incoming,
  uploadSource,
  useDataStore,
  wagesContract,
  wagesCsv,
  wagesRows,
} from './wages';

// hyparquet-writer ships only ES modules (see jest.config.js).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const writer = require('hyparquet-writer') as typeof Writer;

const rows = wagesRows;
const csv = wagesCsv;

/** The wages rows as Parquet bytes (several row groups). */
function parquet(n: number, shift: number): Buffer {
  const r = rows(n, shift);
  return Buffer.from(
    writer.parquetWriteBuffer({
      columnData: [
        { name: 'age', data: r.map((x) => BigInt(x.age)), type: 'INT64' },
        { name: 'wage', data: r.map((x) => x.wage), type: 'DOUBLE' },
        { name: 'sector', data: r.map((x) => x.sector), type: 'STRING' },
        { name: 'union', data: r.map((x) => x.union), type: 'INT32' },
      ],
      rowGroupSize: 700,
    }),
  );
}

describe('Parquet datasets on Azurite', () => {
  const contract = wagesContract;
  let store: ArtifactStore;
  let deps: DataDeps;
  useDataStore(contract, (ctx) => ({ store, deps } = ctx));

  it('ingests an uploaded Parquet file into the same columnar table as the CSV of the same rows; twice stores nothing new', async () => {
    const bytes = parquet(2_000, 0);
    const upload = await storeRawUpload(store, bytes);
    const input = {
      source: uploadSource(upload, 'parquet'),
      contract,
    };
    const first = await ingestDataset(deps)(input);
    const blobs = await blobSnapshot(store, DATASETS_CONTAINER);
    const second = await ingestDataset(deps)(input);
    expect(second).toEqual({ ...first, created: false });
    expect(await blobSnapshot(store, DATASETS_CONTAINER)).toEqual(blobs);
    expect(first).toMatchObject({
      format: 'parquet',
      rows: 2_000,
      columns: 4,
      gzip: false,
      lineEndings: 'none',
      raw: { sha256: upload.sha256, bytes: bytes.length },
      parseIssues: [],
    });
    const fromCsv = await ingestDataset(deps)({
      source: { kind: 'blob', uri: (await storeRawUpload(store, Buffer.from(csv(2_000, 0)))).uri },
      contract,
    });
    const a = await loadColumnar(store, first.columnar);
    const b = await loadColumnar(store, fromCsv.columnar);
    expect(a.columns.map((c) => c.type)).toEqual(['integer', 'number', 'category', 'integer']);
    expect(a.rows).toBe(b.rows);
    expect(a.columns).toEqual(b.columns);
  });

  it('ingests a Parquet blob from elsewhere by copying it, content-addressed, and refuses a nested one leaving no dataset blob', async () => {
    const bytes = parquet(500, 1);
    const other = await incoming(store, 'wages.parquet', bytes);
    const out = await ingestDataset(deps)({ source: { kind: 'blob', uri: other.uri }, contract });
    expect(out).toMatchObject({ format: 'parquet', rows: 500, raw: { sha256: other.sha256 } });
    expect(out.raw.uri).toMatch(/\/datasets\/raw\/sha256\/[0-9a-f]{64}$/);

    const nested = Buffer.from(
      writer.parquetWriteBuffer({
        columnData: [{ name: 's', data: [{ x: 1 }, { x: 2 }] }],
        schema: [
          { name: 'root', num_children: 1 },
          { name: 's', repetition_type: 'OPTIONAL', num_children: 1 },
          { name: 'x', type: 'INT32', repetition_type: 'OPTIONAL' },
        ],
      }),
    );
    const bad = await incoming(store, 'nested.parquet', nested);
    const before = await blobSnapshot(store, DATASETS_CONTAINER);
    await expect(
      ingestDataset(deps)({ source: { kind: 'blob', uri: bad.uri }, contract }),
    ).rejects.toMatchObject({ code: 'PARQUET_NESTED_COLUMN' });
    expect(await blobSnapshot(store, DATASETS_CONTAINER)).toEqual(before);
  });

  it('validates an ingested Parquet dataset against a CSV reference: same findings as for CSV, format named in the report', async () => {
    const ingest = async (data: Buffer) => {
      const up = await storeRawUpload(store, data);
      return ingestDataset(deps)({ source: { kind: 'blob', uri: up.uri }, contract });
    };
    const reference = await ingest(Buffer.from(csv(3_000, 0)));
    const current = await ingest(parquet(3_000, 2));
    const out = await validateDataset(deps)({
      dataset: { columnar: current.columnar, raw: current.raw, format: current.format },
      reference: { columnar: reference.columnar },
      contract,
    });
    expect(out).toMatchObject({ status: 'failed', drift: 'drifted', failedRules: ['max:age'] });
    const { value: report } = await store.getJson<ValidationReport>(out.report.uri);
    expect(report.dataset).toMatchObject({ rows: 3_000, format: 'parquet', sha256: current.raw.sha256 });
  });

  it('POST /api/datasets/validate and /api/datasets/infer take a Parquet body (by content type or by its magic)', async () => {
    const body = parquet(1_000, 0);
    const validate = await validateDatasetHandler(async () => deps)(
      new HttpRequest({
        url: 'http://localhost/api/datasets/validate?pipeline=wages',
        method: 'POST',
        headers: { 'content-type': 'application/vnd.apache.parquet', 'content-length': String(body.length) },
        body: { bytes: body },
      }),
    );
    expect(validate.status).toBe(200);
    const report = validate.jsonBody as ValidationReport;
    expect(report.dataset).toMatchObject({ rows: 1_000, columns: 4, format: 'parquet', bytes: body.length });
    expect(report.summary.status).toBe('passed');

    const infer = await inferContractHandler(async () => deps)(
      new HttpRequest({
        url: 'http://localhost/api/datasets/infer?target=union',
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: { bytes: body },
      }),
    );
    expect(infer.status).toBe(200);
    const inferred = infer.jsonBody as {
      contract: DatasetContract;
      sample: { rows: number; format: string };
    };
    expect(inferred.sample).toEqual({ rows: 1_000, format: 'parquet' });
    const fromCsv = await inferContractHandler(async () => deps)(
      new HttpRequest({
        url: 'http://localhost/api/datasets/infer?target=union',
        method: 'POST',
        headers: { 'content-type': 'text/csv' },
        body: { string: csv(1_000, 0) },
      }),
    );
    // The same proposal as for the CSV of the same rows (whole-valued wages propose integer in both).
    expect(inferred.contract).toEqual((fromCsv.jsonBody as { contract: DatasetContract }).contract);
    expect(inferred.contract.columns.map((c) => c.type)).toEqual([
      'integer',
      'integer',
      'category',
      'integer',
    ]);
    expect(inferred.contract.task).toBe('binary');
  });
});
