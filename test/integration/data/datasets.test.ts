import { gzipSync } from 'node:zlib';
import { HttpRequest } from '@azure/functions';
import { ingestDataset } from '../../../activities/ingestDataset';
import { validateDatasetHandler } from '../../../functions/checkDataset';
import { validateDataset } from '../../../activities/validateDataset';
import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import {
  DATASETS_CONTAINER,
  loadColumnar,
  REPORTS_CONTAINER,
  storeRawUpload,
} from '../../../lib/data/datasets';
import type { DataDeps } from '../../../lib/data/datasets';
import { decodeReferenceProfile, referenceProfilePath } from '../../../lib/data/profiling/referenceProfile';
import { loadReferenceProfile } from '../../../lib/data/profiling/referenceStore';
import type { ValidationReport } from '../../../lib/data/checking/report';
import { datasetContractDigest } from '../../../lib/data/checking/report';
import type { ArtifactStore } from '../../../lib/storage/blob';
import { blobSnapshot, incoming, uploadSource, useDataStore, wagesContract, wagesCsv } from './wages';

const csv = wagesCsv;

describe('data activities on Azurite', () => {
  const contract = wagesContract;
  let store: ArtifactStore;
  let deps: DataDeps;
  useDataStore(contract, (ctx) => ({ store, deps } = ctx));

  it('ingests an upload: raw and columnar blobs, content-addressed; twice gives the same result and the same blobs', async () => {
    const text = csv(2_000, 0);
    const upload = await storeRawUpload(store, Buffer.from(text));
    const input = {
      source: uploadSource(upload, 'csv'),
      pipeline: { name: 'wages', version: 1 },
    };
    const first = await ingestDataset(deps)(input);
    const state = await blobSnapshot(store, DATASETS_CONTAINER);
    const second = await ingestDataset(deps)(input);
    expect(await blobSnapshot(store, DATASETS_CONTAINER)).toEqual(state);
    expect(second).toEqual({ ...first, created: false });
    expect(first).toMatchObject({
      rows: 2_000,
      columns: 4,
      format: 'csv',
      raw: { sha256: upload.sha256 },
      lineEndings: 'lf',
    });
    expect(first.columnar.uri).toMatch(/\/datasets\/columnar\/sha256\/[0-9a-f]{64}$/);
    const table = await loadColumnar(store, first.columnar);
    expect(table.rows).toBe(2_000);
    expect(table.columns.map((c) => c.type)).toEqual(['integer', 'number', 'category', 'integer']);
  });

  it('ingests a gzip blob that is not yet a raw dataset by copying it while parsing', async () => {
    const text = csv(500, 0);
    const gz = gzipSync(text);
    // A blob dropped in the datasets container by hand (runs read datasets from there only).
    const other = await incoming(store, 'wages.csv.gz', gz);
    const out = await ingestDataset(deps)({ source: { kind: 'blob', uri: other.uri }, contract });
    expect(out).toMatchObject({ gzip: true, rows: 500, raw: { sha256: other.sha256 } });
    expect(out.raw.uri).toMatch(/\/datasets\/raw\/sha256\//);
  });

  it('refuses hostile data with its code and leaves no dataset blob behind', async () => {
    const bad = Buffer.from('age,wage,sector,union\n1,2,3\n');
    const other = await incoming(store, 'ragged.csv', bad);
    const before = await blobSnapshot(store, DATASETS_CONTAINER);
    await expect(
      ingestDataset(deps)({ source: { kind: 'blob', uri: other.uri }, contract }),
    ).rejects.toMatchObject({ code: 'CSV_RAGGED_ROW' });
    const after = await blobSnapshot(store, DATASETS_CONTAINER);
    expect(Object.keys(after).filter((k) => !k.startsWith('_incoming/'))).toEqual(
      Object.keys(before).filter((k) => !k.startsWith('_incoming/')),
    );
  });

  it('validates against the reference: report in Blob, same report blob on a second run, drift found', async () => {
    const ingest = async (text: string) => {
      const up = await storeRawUpload(store, Buffer.from(text));
      return ingestDataset(deps)({
        source: { kind: 'upload', uri: up.uri, sha256: up.sha256, bytes: up.bytes, format: 'csv' },
        contract,
      });
    };
    const reference = await ingest(csv(3_000, 0));
    const current = await ingest(csv(3_000, 2));
    const input = {
      dataset: { columnar: current.columnar, raw: current.raw, format: current.format },
      reference: { columnar: reference.columnar },
      contract,
    };
    const first = await validateDataset(deps)(input);
    const reports = await blobSnapshot(store, REPORTS_CONTAINER);
    const second = await validateDataset(deps)(input);
    expect(second).toEqual(first);
    expect(await blobSnapshot(store, REPORTS_CONTAINER)).toEqual(reports);
    expect(first).toMatchObject({ status: 'failed', passed: false, drift: 'drifted' });
    expect(first.failedRules).toEqual(['max:age']);
    const { value: report } = await store.getJson<ValidationReport>(first.report.uri);
    expect(report.dataset).toMatchObject({ rows: 3_000, sha256: current.raw.sha256, format: 'csv' });
    expect(report.violations[0]).toMatchObject({ rule: 'max', column: 'age' });
    expect(report.violations[0]!.firstRows.length).toBeGreaterThan(0);
    expect(report.columns.map((c) => c.name)).toEqual(['age', 'wage', 'sector', 'union']);
    expect('columns' in report.drift && report.drift.driftedColumns).toEqual(
      expect.arrayContaining(['age', 'wage']),
    );
  });

  it('stores the reference profile once and validates from it; a damaged profile is rebuilt from the rows', async () => {
    const ingest = async (text: string) => {
      const up = await storeRawUpload(store, Buffer.from(text));
      return ingestDataset(deps)({
        source: { kind: 'upload', uri: up.uri, sha256: up.sha256, bytes: up.bytes, format: 'csv' },
        contract,
      });
    };
    const reference = await ingest(csv(2_500, 1));
    const current = await ingest(csv(2_500, 3));
    const input = {
      dataset: { columnar: current.columnar },
      reference: { columnar: reference.columnar },
      contract,
    };
    const key = { dataSha256: reference.columnar.sha256, contractSha256: datasetContractDigest(contract) };
    const where = { container: DATASETS_CONTAINER, path: referenceProfilePath(key) };
    expect(await store.exists(where)).toBe(false);
    const first = await validateDataset(deps)(input);
    const stored = await loadReferenceProfile(store, key);
    expect(stored).toBeDefined();
    expect(decodeReferenceProfile(stored!, key).table.rows).toBe(2_500);

    // Damaged (bytes that do not read as a profile): rebuilt from the rows, same report, replaced.
    await store.put(where, Buffer.from('garbage'), { condition: 'overwrite' });
    expect(await validateDataset(deps)(input)).toEqual(first);
    expect(Buffer.from((await loadReferenceProfile(store, key))!)).toEqual(Buffer.from(stored!));

    // With the profile stored, the reference's rows are not read at all: gone, and still the same report.
    expect(await store.delete(reference.columnar.uri)).toBe(true);
    expect(await validateDataset(deps)(input)).toEqual(first);
  });

  it('without a reference, drift is skipped and says why; clean data passes', async () => {
    const up = await storeRawUpload(store, Buffer.from(csv(300, 0)));
    const ing = await ingestDataset(deps)({
      source: { kind: 'upload', uri: up.uri, sha256: up.sha256, bytes: up.bytes, format: 'csv' },
      contract,
    });
    const out = await validateDataset(deps)({
      dataset: { columnar: ing.columnar },
      pipeline: { name: 'wages', version: 1 },
    });
    expect(out).toMatchObject({ status: 'passed', passed: true, drift: 'skipped', errors: 0 });
  });

  it('a raw reference fixed in the contract is parsed once: later checks use its stored profile', async () => {
    const up = await storeRawUpload(store, Buffer.from(csv(1_500, 0)));
    const fixed = parseDatasetContract({
      ...contract,
      drift: { ...contract.drift, reference: { kind: 'dataset', uri: up.uri, sha256: up.sha256 } },
    });
    const check = async () => {
      const request = new HttpRequest({
        url: 'http://localhost/api/datasets/validate',
        method: 'POST',
        headers: {
          'content-type': 'text/csv',
          'x-sluice-contract': Buffer.from(JSON.stringify(fixed)).toString('base64url'),
        },
        body: { string: csv(1_500, 2) },
      });
      return (await validateDatasetHandler(async () => deps)(request)).jsonBody as ValidationReport;
    };
    const first = await check();
    expect(first.reference).toEqual({
      rows: 1_500,
      columns: 4,
      sha256: up.sha256,
      bytes: up.bytes,
      format: 'csv',
    });
    expect(first.summary.drift).toBe('drifted');
    const key = { dataSha256: up.sha256, contractSha256: datasetContractDigest(fixed) };
    expect(await loadReferenceProfile(store, key)).toBeDefined();
    // The raw reference is gone: the check still answers the same, in the same key order, from the profile.
    expect(await store.delete(up.uri)).toBe(true);
    const second = await check();
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
  });

  it('the dataset check finds the production reference and reports drift against it', async () => {
    const up = await storeRawUpload(store, Buffer.from(csv(1_000, 0)));
    const reference = await ingestDataset(deps)({
      source: { kind: 'upload', uri: up.uri, sha256: up.sha256, bytes: up.bytes, format: 'csv' },
      contract,
    });
    const withProduction: DataDeps = {
      ...deps,
      productionReference: async (name) => (name === 'wages' ? { columnar: reference.columnar } : undefined),
    };
    const request = new HttpRequest({
      url: 'http://localhost/api/datasets/validate?pipeline=wages',
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: { string: csv(1_000, 2) },
    });
    const res = await validateDatasetHandler(async () => withProduction)(request);
    const report = res.jsonBody as ValidationReport;
    expect(report.reference).toMatchObject({ rows: 1_000, sha256: reference.columnar.sha256 });
    expect(report.summary.drift).toBe('drifted');
  });
});
