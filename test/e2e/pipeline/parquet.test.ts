/**
 * Parquet input end to end through devhost: a run started over HTTP with a Parquet body trains,
 * waits for a reviewer and deploys; the CLI sends a Parquet file by its magic bytes whatever it is
 * called, and it validates against a production model trained on the CSV of the same rows; a
 * truncated upload fails the run at ingestion with its code and writes no dataset. Needs `dist/`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type * as Writer from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import type { ValidationReport } from '../../../lib/data/checking/report';
import { repoRoot } from '../../support/devhost';
import type { PipelineHarness, RunView } from './harness';
import {
  REQUESTER,
  REVIEWER,
  startPipelineHarness,
  STEPS_AT_APPROVAL,
  stepStatuses,
  testPipeline,
  WAGES_CSV,
} from './harness';

// hyparquet-writer ships only ES modules (see jest.config.js).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const writer = require('hyparquet-writer') as typeof Writer;

jest.setTimeout(240_000);

const INTEGER_COLUMNS = new Set(['education', 'south', 'experience', 'union', 'age', 'married']);

/** The wages CSV (no quoted fields) as Parquet: integers as INT32, wage as DOUBLE, the rest as strings. */
function wagesParquet(): Buffer {
  const [header, ...lines] = readFileSync(WAGES_CSV, 'utf8').trim().split('\n');
  const names = header!.split(',');
  const cells = lines.map((l) => l.split(','));
  return Buffer.from(
    writer.parquetWriteBuffer({
      columnData: names.map((name, c) => {
        const values = cells.map((r) => r[c]!);
        if (INTEGER_COLUMNS.has(name)) return { name, data: values.map(Number), type: 'INT32' as const };
        if (name === 'wage') return { name, data: values.map(Number), type: 'DOUBLE' as const };
        return { name, data: values, type: 'STRING' as const };
      }),
      // Several row groups, so ingestion reads more than one.
      rowGroupSize: 200,
    }),
  );
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const stepOf = (run: RunView, name: string) => run.steps.find((s) => s.name === name)!;

describe('Parquet input through devhost', () => {
  let h: PipelineHarness;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-parquet-'));
  const parquet = wagesParquet();
  const runs: Record<string, string> = {};

  async function startParquet(pipeline: string, body: Buffer, type: string): Promise<Response> {
    return h.api('POST', `/api/pipelines/${pipeline}/runs`, body, {
      'content-type': type,
      'x-ms-client-principal-name': REQUESTER,
    });
  }

  /** A blob named by a stored artifact URI (`http://host:port/<account>/<container>/<path>`). */
  async function readBlob(uri: string): Promise<Buffer> {
    const [, , container, ...rest] = new URL(uri).pathname.split('/');
    return h.blobs.getContainerClient(container!).getBlobClient(rest.join('/')).downloadToBuffer();
  }

  /** Every blob of the datasets container but the spool of uploads in flight. */
  async function datasetBlobs(): Promise<string[]> {
    const out: string[] = [];
    for await (const b of h.blobs.getContainerClient('datasets').listBlobsFlat())
      if (!b.name.startsWith('_incoming/')) out.push(b.name);
    return out.sort();
  }

  beforeAll(async () => {
    h = await startPipelineHarness();
    await h.put(testPipeline('e2e-parquet'));
    await h.put(testPipeline('e2e-parquet-cli'));
    const res = await startParquet('e2e-parquet', parquet, 'application/vnd.apache.parquet');
    const body = (await res.json()) as { runId: string };
    expect(res.status).toBe(202);
    runs.http = body.runId;
    // Production for the CLI pipeline is trained on the CSV of the same rows.
    runs.csv = await h.start('e2e-parquet-cli');
  });
  afterAll(async () => {
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a Parquet upload over HTTP is ingested as parquet, validated, trained, approved and deployed', async () => {
    const waiting = await h.waitFor(runs.http!, 'approval', (r) => r.status === 'waiting_for_approval');
    expect(stepStatuses(waiting)).toEqual(STEPS_AT_APPROVAL);
    expect(waiting.source).toMatchObject({
      kind: 'upload',
      format: 'parquet',
      sha256: sha256(parquet),
      bytes: parquet.length,
    });
    expect(stepOf(waiting, 'ingest').outputs).toMatchObject({
      format: 'parquet',
      rows: 534,
      columns: 11,
      sha256: sha256(parquet),
      bytes: parquet.length,
    });
    // The stored raw dataset is the bytes that were sent.
    const rawUri = stepOf(waiting, 'ingest').outputs!.rawUri as string;
    expect(sha256(await readBlob(rawUri))).toBe(sha256(parquet));

    const validate = stepOf(waiting, 'validate').outputs!;
    expect(validate).toMatchObject({ status: 'passed', errors: 0 });
    const report = JSON.parse(
      (await readBlob(validate.reportUri as string)).toString('utf8'),
    ) as ValidationReport;
    expect(report.summary.status).toBe('passed');
    expect(report.dataset).toMatchObject({ format: 'parquet', rows: 534, columns: 11 });
    expect(report.columns.map((c) => c.name).sort()).toEqual(
      [...INTEGER_COLUMNS, 'wage', 'gender', 'race', 'occupation', 'sector'].sort(),
    );
    // No production model yet: nothing to drift against.
    expect(report.drift.status).toBe('skipped');

    await h.decide(runs.http!, 'approve', 'trained from the Parquet export');
    const done = await h.finished(runs.http!);
    expect(done.status).toBe('succeeded');
    expect(done.reports.validation).toBe(validate.reportUri);
    expect(done.deployment).toMatchObject({ modelName: 'e2e-parquet', version: 1 });
    expect(done.approval).toMatchObject({ outcome: 'approved', approvedBy: [REVIEWER] });
  });

  it('the CLI sends a Parquet file by its magic bytes (data.bin), validated against a CSV-trained production model', async () => {
    await h.waitFor(runs.csv!, 'approval', (r) => r.status === 'waiting_for_approval');
    await h.decide(runs.csv!, 'approve');
    expect((await h.finished(runs.csv!)).status).toBe('succeeded');

    const file = path.join(dir, 'data.bin');
    writeFileSync(file, parquet);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        path.join(repoRoot, 'dist', 'cli', 'sluice.js'),
        'run',
        'e2e-parquet-cli',
        '--data',
        file,
        '--url',
        h.url,
        '--json',
      ],
      { timeout: 60_000 },
    );
    const started = JSON.parse(stdout) as { runId: string; source: { format: string } };
    expect(started.source).toMatchObject({ format: 'parquet', sha256: sha256(parquet) });

    const waiting = await h.waitFor(started.runId, 'approval', (r) => r.status === 'waiting_for_approval');
    expect(waiting.trigger).toMatchObject({ kind: 'cli' });
    expect(stepOf(waiting, 'ingest').outputs).toMatchObject({ format: 'parquet', rows: 534, columns: 11 });
    const validate = stepOf(waiting, 'validate').outputs!;
    expect(validate).toMatchObject({ status: 'passed', drift: 'stable', driftedColumns: [] });
    const report = JSON.parse(
      (await readBlob(validate.reportUri as string)).toString('utf8'),
    ) as ValidationReport;
    // The same rows as the CSV production was trained on: same schema, no drift.
    expect(report.dataset.format).toBe('parquet');
    expect(report.reference).toMatchObject({ rows: 534, columns: 11 });
    expect(report.schemaDiff).toMatchObject({ breaking: false, changes: [] });
    await h.api('POST', `/api/runs/${started.runId}/cancel`);
  });

  it('a truncated Parquet upload fails the run at ingestion with PARQUET_BAD_MAGIC and writes no dataset', async () => {
    await h.finished(runs.http!);
    const before = await datasetBlobs();
    expect(before.filter((n) => n.startsWith('columnar/'))).not.toEqual([]);
    const truncated = parquet.subarray(0, parquet.length - 100);
    const res = await startParquet('e2e-parquet', truncated, 'application/x-parquet');
    expect(res.status).toBe(202);
    const { runId, source } = (await res.json()) as {
      runId: string;
      source: { uri: string; sha256: string };
    };
    expect(source.sha256).toBe(sha256(truncated));

    const done = await h.finished(runId);
    expect(done).toMatchObject({ status: 'failed', stopReason: 'error' });
    expect(done.reason).toMatch(/^ingest failed: .*does not end with PAR1/);
    expect(stepOf(done, 'ingest')).toMatchObject({
      status: 'failed',
      error: { code: 'PARQUET_BAD_MAGIC' },
    });
    expect(stepOf(done, 'validate').status).not.toBe('succeeded');
    expect(stepOf(done, 'train').status).not.toBe('succeeded');
    // The only new blob is the upload as received (startRun stores it before the run starts); the
    // ingestion wrote no columnar dataset for it.
    const added = (await datasetBlobs()).filter((n) => !before.includes(n));
    expect(added).toEqual([new URL(source.uri).pathname.split('/').slice(3).join('/')]);
    expect(added[0]).toMatch(/^uploads\/e2e-parquet\//);
    // Production is still the model trained on the whole file.
    expect((await h.model('e2e-parquet'))?.latestVersion).toBe(1);
  });
});
