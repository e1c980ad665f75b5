import { Readable } from 'node:stream';
import resources from '../resources.json';
import type { ArtifactStore, BlobRef } from '../storage/blob';
import { checkDatasetSource } from '../storage/datasetSource';
import type { Table } from './table';
import type { DatasetContract } from '../contracts/datasetContract';
import { COLUMNAR_CONTENT_TYPE, decodeColumnar, encodeColumnar } from './reading/columnar';
import type { DatasetFormat, ReadDatasetOptions } from './reading/readDataset';
import { readDataset } from './reading/readDataset';
import type { ByteSource } from './reading/input';
import { byteChunks } from './reading/input';
import type { IngestLimits } from './limits';
import { defaultLimits } from './limits';
import type { ValidationReport } from './checking/report';
import { tee } from './reading/tee';

/** What the data activities and the dataset endpoints need (lib/services.ts builds it; tests inject it). */
export interface DataDeps {
  store: ArtifactStore;
  limits: IngestLimits;
  /** The dataset contract of a stored pipeline version (undefined when there is no such pipeline). */
  contractOf(pipeline: string, version?: number): Promise<DatasetContract | undefined>;
  /**
   * The columnar dataset the pipeline's production model was trained on (the drift reference), as
   * recorded on its registry version; undefined before a first deployment. Runs get it from the
   * resolveReference activity; the dataset check asks here.
   */
  productionReference?(pipeline: string): Promise<{ columnar: BlobDigest } | undefined>;
}

/**
 * Datasets in Blob Storage: raw uploads at `datasets/raw/sha256/<hex>`, their columnar form at
 * `datasets/columnar/sha256/<hex>`, validation reports at `reports/validation/sha256/<hex>`. All
 * content-addressed and write-once, so ingesting or validating twice finds the same blobs.
 */

export const DATASETS_CONTAINER = resources.blobContainers.datasets;
export const REPORTS_CONTAINER = resources.blobContainers.reports;
const RAW_PREFIX = 'raw';
const COLUMNAR_PREFIX = 'columnar';
const REPORT_PREFIX = 'validation';

export interface BlobDigest {
  uri: string;
  sha256: string;
  bytes: number;
}

export interface IngestedDataset {
  raw: BlobDigest;
  columnar: BlobDigest;
  format: DatasetFormat;
  rows: number;
  columns: number;
  gzip: boolean;
  lineEndings: 'lf' | 'crlf' | 'mixed' | 'none';
  /** Columns with values that could not be read as their declared type (validation reports the rows). */
  parseIssues: { column: string; count: number }[];
  /** False when the raw and columnar blobs were both already stored (ingesting the same data again). */
  created: boolean;
}

export interface IngestOptions extends Omit<ReadDatasetOptions, 'limits'> {
  limits?: IngestLimits;
  /** The source is already the stored raw blob: hash-check it instead of storing it again. */
  rawAlreadyStored?: BlobDigest;
}

/** Stores an upload as a raw dataset blob (the HTTP upload path), without parsing it. */
export async function storeRawUpload(
  store: ArtifactStore,
  source: ByteSource,
  limits: IngestLimits = defaultLimits,
): Promise<BlobDigest> {
  const stored = await store.putContentAddressed(DATASETS_CONTAINER, byteChunks(source), {
    prefix: RAW_PREFIX,
    maxBytes: limits.maxBytes,
  });
  return { uri: stored.uri, sha256: stored.sha256, bytes: stored.size };
}

/**
 * Ingests a dataset: one pass over `source` both stores the raw bytes (content-addressed) and
 * parses them into typed columns, then the columnar form is stored next to them. A parse error
 * aborts the raw upload, so a refused file leaves no dataset blob behind.
 */
export async function ingestDataset(
  store: ArtifactStore,
  source: ByteSource,
  options: IngestOptions = {},
): Promise<{ dataset: IngestedDataset; table: Table }> {
  const { rawAlreadyStored, ...readOptions } = options;
  const limits = options.limits ?? defaultLimits;
  let raw: BlobDigest;
  let rawCreated = false;
  let parsed: Awaited<ReturnType<typeof readDataset>>;
  if (rawAlreadyStored) {
    parsed = await readDataset(source, { ...readOptions, limits });
    raw = rawAlreadyStored;
  } else {
    let parseDone: (ok: boolean) => void = () => undefined;
    const parseSettled = new Promise<boolean>((resolve) => (parseDone = resolve));
    // The upload sees the end of the data only after the parser accepted all of it.
    const split = tee(byteChunks(source), {
      holdFirstEnd: parseSettled.then((ok) => {
        if (!ok) throw new Error('the dataset was refused');
      }),
    });
    const [toBlob, toParser] = split.branches;
    const upload = store
      .putContentAddressed(DATASETS_CONTAINER, toBlob, { prefix: RAW_PREFIX, maxBytes: limits.maxBytes })
      .catch((err: unknown) => {
        split.abort(err);
        throw err;
      });
    const parse = readDataset(toParser, { ...readOptions, limits }).then(
      (r) => {
        parseDone(true);
        return r;
      },
      (err: unknown) => {
        parseDone(false);
        split.abort(err);
        throw err;
      },
    );
    // Whichever fails first decides the error; a parse error wins over the upload it aborted.
    const [u, p] = await Promise.allSettled([upload, parse]);
    if (p.status === 'rejected') throw p.reason;
    if (u.status === 'rejected') throw u.reason;
    parsed = p.value;
    raw = { uri: u.value.uri, sha256: u.value.sha256, bytes: u.value.size };
    rawCreated = u.value.created;
  }
  const table = parsed.table;
  const parts = encodeColumnar(table, { sourceSha256: raw.sha256, format: parsed.format });
  const columnar = await store.putContentAddressed(DATASETS_CONTAINER, Readable.from(parts), {
    prefix: COLUMNAR_PREFIX,
    contentType: COLUMNAR_CONTENT_TYPE,
    metadata: { source: raw.sha256 },
  });
  return {
    table,
    dataset: {
      raw,
      columnar: { uri: columnar.uri, sha256: columnar.sha256, bytes: columnar.size },
      format: parsed.format,
      rows: table.rows,
      columns: table.columns.length,
      gzip: parsed.input.gzip,
      lineEndings: parsed.lineEndings,
      parseIssues: table.columns
        .filter((c) => c.issues.count > 0)
        .map((c) => ({ column: c.name, count: c.issues.count })),
      created: rawCreated || columnar.created,
    },
  };
}

/** Ingests a dataset already in Blob Storage (an upload, or a blob of the datasets container). */
export async function ingestBlob(
  store: ArtifactStore,
  ref: BlobRef,
  options: IngestOptions & { sha256?: string } = {},
): Promise<{ dataset: IngestedDataset; table: Table }> {
  const { sha256, ...rest } = options;
  const location = typeof ref === 'string' ? store.parseUri(ref) : ref;
  // Checked at use too (not only where the name came in): a definition stored before the check, or a
  // contract's reference, must not read models, reports or the outbox either.
  checkDatasetSource(location, 'source');
  const { stream, properties } = await store.getStream(location, sha256 ? { sha256 } : {});
  // Any content-addressed blob of the datasets container (raw/…, or an API upload under uploads/…) is
  // already stored by its digest: read it, do not copy it.
  const match = /(?:^|\/)sha256\/([0-9a-f]{64})$/.exec(location.path);
  const alreadyRaw =
    location.container === DATASETS_CONTAINER && match
      ? { uri: store.uri(location), sha256: match[1]!, bytes: properties.size }
      : undefined;
  return ingestDataset(store, stream as AsyncIterable<Uint8Array>, {
    ...rest,
    expectedBytes: properties.size,
    ...(alreadyRaw ? { rawAlreadyStored: alreadyRaw } : {}),
  });
}

/** Reads a dataset's columnar form (verified against its digest). */
export async function loadColumnar(
  store: ArtifactStore,
  ref: { uri: string; sha256: string },
): Promise<Table> {
  const { data } = await store.getBuffer(ref.uri, { sha256: ref.sha256 });
  return decodeColumnar(data);
}

/** Stores a validation report, content-addressed: the same report is the same blob. */
export async function storeReport(store: ArtifactStore, report: ValidationReport): Promise<BlobDigest> {
  const stored = await store.putContentAddressed(REPORTS_CONTAINER, JSON.stringify(report), {
    prefix: REPORT_PREFIX,
    contentType: 'application/json',
  });
  return { uri: stored.uri, sha256: stored.sha256, bytes: stored.size };
}
