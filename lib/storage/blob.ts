import { createHash, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import {
  BlobServiceClient,
  type BlobClient,
  type BlobRequestConditions,
  type ContainerClient,
} from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import type { ZodType } from 'zod';
import type { Config } from '../config';
import { NonRetriableError, TransientError, ValidationError } from '../errors';
import resources from '../resources.json';
import { azureCredential } from './credential';
import { mapStorageError, statusOf } from './errors';

/** Where a blob lives, independent of the account's endpoint. */
export interface BlobLocation {
  container: string;
  path: string;
}

/** A blob URI (`http(s)://…/container/path`) or a location in this store's account. */
export type BlobRef = string | BlobLocation;

/** What a stream upload accepts: bytes, text, or any (async) iterable of chunks, e.g. a Node Readable. */
export type BlobSource = Uint8Array | string | AsyncIterable<Uint8Array | string>;

export interface StoredBlob extends BlobLocation {
  uri: string;
  /** Lower-case hex SHA-256 of the content. */
  sha256: string;
  size: number;
  /** False when the same content was already stored (a re-run of an activity). */
  created: boolean;
}

/**
 * How a named write treats an existing blob: `create` (default) writes once with `If-None-Match: *`;
 * `{ ifMatch }` replaces only the version the caller read; `overwrite` replaces unconditionally.
 */
export type WriteCondition = 'create' | 'overwrite' | { ifMatch: string };

export type WriteResult =
  | { ok: true; uri: string; etag: string; sha256: string; written: boolean }
  /** `exists`: a different content is already there (write-once); `etag-mismatch`: someone changed it. */
  | { ok: false; reason: 'exists' | 'etag-mismatch'; uri: string; etag?: string };

export interface BlobProperties {
  etag: string;
  size: number;
  contentType: string | undefined;
  metadata: Record<string, string>;
}

export interface BlobListing extends BlobLocation {
  uri: string;
  size: number;
  etag: string;
  lastModified: Date;
  contentType: string | undefined;
}

export interface ArtifactStoreOptions {
  /** Content up to this size is hashed in memory and written directly (default 4 MiB). */
  inlineLimitBytes?: number;
  /** Block size and parallelism of streamed uploads (defaults 8 MiB × 4). */
  blockSizeBytes?: number;
  concurrency?: number;
}

/** Metadata key holding the SHA-256 of the content, set on every blob this store writes. */
export const SHA256_METADATA = 'sha256';
/** Prefix of in-flight uploads; a crash can leave one behind, never a visible artifact. */
export const TEMP_PREFIX = '_incoming/';

const CONTENT_ADDRESSED = /(?:^|\/)sha256\/([0-9a-f]{64})$/;
const CONTAINER_NAME = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;

const sha256Hex = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
const toBuffer = (chunk: Uint8Array | string) =>
  typeof chunk === 'string'
    ? Buffer.from(chunk)
    : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);

/**
 * Artifacts in Blob Storage. Every blob it writes carries its SHA-256 in metadata; content-addressed
 * blobs (`…/sha256/<hex>`) are written once and verified on every read. The app builds one in its
 * composition root (lib/services.ts); tests build their own from a connection string.
 */
export class ArtifactStore {
  readonly account: string;
  private readonly inlineLimit: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private ensured: Promise<void> | undefined;

  constructor(
    readonly service: BlobServiceClient,
    options: ArtifactStoreOptions = {},
  ) {
    this.account = service.accountName;
    this.inlineLimit = options.inlineLimitBytes ?? 4 * 1024 * 1024;
    this.blockSize = options.blockSizeBytes ?? 8 * 1024 * 1024;
    this.concurrency = options.concurrency ?? 4;
  }

  static fromConnectionString(connectionString: string, options?: ArtifactStoreOptions): ArtifactStore {
    return new ArtifactStore(BlobServiceClient.fromConnectionString(connectionString), options);
  }

  /** From the settings; `credential` (Azure only) defaults to a new one for AZURE_CLIENT_ID. */
  static fromConfig(
    config: Config,
    options?: ArtifactStoreOptions,
    credential?: TokenCredential,
  ): ArtifactStore {
    if (config.ARTIFACT_STORAGE_CONNECTION) {
      return ArtifactStore.fromConnectionString(config.ARTIFACT_STORAGE_CONNECTION, options);
    }
    if (config.ARTIFACT_STORAGE_ACCOUNT_URL) {
      credential ??= azureCredential(config.AZURE_CLIENT_ID);
      return new ArtifactStore(
        new BlobServiceClient(config.ARTIFACT_STORAGE_ACCOUNT_URL, credential),
        options,
      );
    }
    throw new NonRetriableError(
      'ARTIFACT_STORAGE_UNSET',
      'set ARTIFACT_STORAGE_CONNECTION or ARTIFACT_STORAGE_ACCOUNT_URL',
    );
  }

  /**
   * Creates every container named in lib/resources.json that is missing, once per store (idempotent;
   * concurrent callers share one attempt, a failed attempt is retried by the next call).
   */
  ensureContainers(): Promise<void> {
    this.ensured ??= Promise.all(
      Object.values(resources.blobContainers).map(async (name) => {
        try {
          await this.service.getContainerClient(name).createIfNotExists();
        } catch (err) {
          throw mapStorageError(err, 'blob', `create container ${name}`);
        }
      }),
    ).then(
      () => undefined,
      (err: unknown) => {
        this.ensured = undefined;
        throw err;
      },
    );
    return this.ensured;
  }

  /** The blob's URI, e.g. `https://acct.blob.core.windows.net/datasets/x/sha256/ab…`. */
  uri(location: BlobLocation): string {
    return this.blob(location).url;
  }

  /**
   * Parses a blob URI of this account back into a location. Accepts any endpoint of the same account
   * (an emulator restarted on another port still owns its URIs); rejects other accounts, SAS tokens
   * and malformed paths with a ValidationError.
   */
  parseUri(uri: string): BlobLocation {
    const parsed = parseBlobUri(uri);
    if (parsed.account !== this.account) {
      throw new ValidationError(
        'FOREIGN_BLOB_URI',
        `blob URI ${uri} is not in storage account ${this.account}`,
        {
          field: 'uri',
        },
      );
    }
    return { container: parsed.container, path: parsed.path };
  }

  /**
   * Streams `source` into `container` at `<prefix>/sha256/<hex>`, hashing as it goes. Small content
   * is written directly with `If-None-Match: *`; larger content goes to a temp blob first and is then
   * copied server-side to its content address (write-once; "already there" is success) and the temp
   * blob deleted. Fails with NonRetriableError `BLOB_TOO_LARGE` beyond `maxBytes`.
   */
  async putContentAddressed(
    container: string,
    source: BlobSource,
    options: {
      prefix?: string;
      contentType?: string;
      metadata?: Record<string, string>;
      maxBytes?: number;
    } = {},
  ): Promise<StoredBlob> {
    const prefix = options.prefix ? `${options.prefix.replace(/\/+$/, '')}/` : '';
    const contentType = options.contentType ?? 'application/octet-stream';
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    const hash = createHash('sha256');
    let size = 0;
    const take = (chunk: Uint8Array | string): Buffer => {
      const b = toBuffer(chunk);
      size += b.length;
      if (size > maxBytes) {
        throw new NonRetriableError(
          'BLOB_TOO_LARGE',
          `content is larger than the limit of ${maxBytes} bytes`,
        );
      }
      hash.update(b);
      return b;
    };

    const iterator: AsyncIterator<Uint8Array | string> | undefined =
      typeof source === 'string' || source instanceof Uint8Array ? undefined : source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let ended = iterator === undefined;
    if (iterator === undefined) head.push(take(source as Uint8Array | string));
    while (!ended && size <= this.inlineLimit) {
      const next = await iterator!.next();
      if (next.done) ended = true;
      else head.push(take(next.value));
    }

    const metadata = (sha256: string) => ({ ...options.metadata, [SHA256_METADATA]: sha256 });
    if (ended) {
      const data = Buffer.concat(head);
      const sha256 = hash.digest('hex');
      const location = { container, path: `${prefix}sha256/${sha256}` };
      const target = this.blob(location).getBlockBlobClient();
      let created = true;
      try {
        await target.uploadData(data, {
          conditions: { ifNoneMatch: '*' },
          blobHTTPHeaders: { blobContentType: contentType },
          metadata: metadata(sha256),
        });
      } catch (err) {
        if (!isAlreadyThere(err)) throw mapStorageError(err, 'blob', `write ${container}/${location.path}`);
        created = false;
      }
      return { ...location, uri: target.url, sha256, size, created };
    }

    const temp = this.service
      .getContainerClient(container)
      .getBlockBlobClient(`${TEMP_PREFIX}${randomUUID()}`);
    try {
      async function* rest(): AsyncGenerator<Buffer> {
        yield* head;
        for (let next = await iterator!.next(); !next.done; next = await iterator!.next())
          yield take(next.value);
      }
      try {
        await temp.uploadStream(Readable.from(rest()), this.blockSize, this.concurrency, {
          blobHTTPHeaders: { blobContentType: contentType },
        });
      } catch (err) {
        throw mapStorageError(err, 'blob', `upload to ${container}/${temp.name}`);
      }
      const sha256 = hash.digest('hex');
      const location = { container, path: `${prefix}sha256/${sha256}` };
      const target = this.blob(location);
      const created = await this.copyOnce(temp, target, metadata(sha256));
      return { ...location, uri: target.url, sha256, size, created };
    } finally {
      await temp.deleteIfExists().catch(() => undefined);
    }
  }

  /** Server-side copy to a write-once destination; false when the destination already existed. */
  private async copyOnce(
    source: BlobClient,
    target: BlobClient,
    metadata: Record<string, string>,
  ): Promise<boolean> {
    try {
      let existing = await this.settledProperties(target);
      if (existing?.copyStatus === 'success' || (existing && !existing.copyStatus)) return false;
      // Absent, or left behind by a failed or aborted copy of an earlier attempt: copy (again).
      const conditions: BlobRequestConditions = existing ? { ifMatch: existing.etag } : { ifNoneMatch: '*' };
      const poller = await target.beginCopyFromURL(source.url, { conditions, metadata });
      await poller.pollUntilDone();
      existing = await this.settledProperties(target);
      if (existing?.copyStatus !== 'success' && existing?.copyStatus !== undefined) {
        throw new TransientError(
          'BLOB_COPY_FAILED',
          `copy to ${target.containerName}/${target.name} ended ${existing.copyStatus}`,
        );
      }
      return true;
    } catch (err) {
      if (isAlreadyThere(err)) return false;
      throw mapStorageError(err, 'blob', `copy to ${target.containerName}/${target.name}`);
    }
  }

  /** Properties once no copy is pending on the blob (an earlier attempt may still be copying). */
  private async settledProperties(target: BlobClient) {
    for (;;) {
      let p;
      try {
        p = await target.getProperties();
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
      if (p.copyStatus !== 'pending') return p;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /**
   * Writes bytes or text at a name, by default once (`If-None-Match: *`). Writing the same content
   * again is success with `written: false` (activities run at least once); a different content, or
   * a stale ETag, is `{ ok: false }`.
   */
  async put(
    ref: BlobRef,
    data: Uint8Array | string,
    options: { contentType?: string; metadata?: Record<string, string>; condition?: WriteCondition } = {},
  ): Promise<WriteResult> {
    const location = this.locate(ref);
    const client = this.blob(location).getBlockBlobClient();
    const condition = options.condition ?? 'create';
    const conditions: BlobRequestConditions =
      condition === 'create'
        ? { ifNoneMatch: '*' }
        : condition === 'overwrite'
          ? {}
          : { ifMatch: condition.ifMatch };
    const body = toBuffer(data);
    const sha256 = sha256Hex(body);
    try {
      const response = await client.upload(body, body.length, {
        conditions,
        blobHTTPHeaders: { blobContentType: options.contentType ?? 'application/octet-stream' },
        metadata: { ...options.metadata, [SHA256_METADATA]: sha256 },
      });
      return { ok: true, uri: client.url, etag: response.etag ?? '', sha256, written: true };
    } catch (err) {
      const status = statusOf(err);
      if (condition === 'create' && (status === 409 || status === 412)) {
        const existing = await this.properties(location);
        if (existing?.metadata[SHA256_METADATA] === sha256) {
          return { ok: true, uri: client.url, etag: existing.etag, sha256, written: false };
        }
        return { ok: false, reason: 'exists', uri: client.url, etag: existing?.etag };
      }
      if (typeof condition === 'object' && (status === 412 || status === 404)) {
        return { ok: false, reason: 'etag-mismatch', uri: client.url };
      }
      throw mapStorageError(err, 'blob', `write ${location.container}/${location.path}`);
    }
  }

  /** {@link put} of `JSON.stringify(value)` as `application/json`. */
  putJson(
    ref: BlobRef,
    value: unknown,
    options: { metadata?: Record<string, string>; condition?: WriteCondition } = {},
  ): Promise<WriteResult> {
    return this.put(ref, JSON.stringify(value), { ...options, contentType: 'application/json' });
  }

  /**
   * Opens a blob for reading. A content-addressed blob (or any blob when `sha256` is given) is
   * verified while streaming: the stream fails with NonRetriableError `BLOB_DIGEST_MISMATCH` at its
   * end if the bytes do not hash to the expected digest. Missing: NonRetriableError `BLOB_NOT_FOUND`.
   */
  async getStream(
    ref: BlobRef,
    options: { sha256?: string } = {},
  ): Promise<{ stream: Readable; properties: BlobProperties }> {
    const location = this.locate(ref);
    let response;
    try {
      response = await this.blob(location).download();
    } catch (err) {
      throw mapStorageError(err, 'blob', `read ${location.container}/${location.path}`);
    }
    const body = response.readableStreamBody;
    if (!body)
      throw new NonRetriableError('BLOB_NO_BODY', `blob ${location.container}/${location.path} has no body`);
    const properties: BlobProperties = {
      etag: response.etag ?? '',
      size: response.contentLength ?? 0,
      contentType: response.contentType,
      metadata: response.metadata ?? {},
    };
    const expected = options.sha256 ?? CONTENT_ADDRESSED.exec(location.path)?.[1];
    const readable = body instanceof Readable ? body : Readable.from(body as AsyncIterable<Buffer>);
    const stream = expected
      ? readable.pipe(new DigestCheck(expected, `${location.container}/${location.path}`))
      : readable;
    if (expected) readable.once('error', (err) => stream.destroy(err));
    return { stream, properties };
  }

  /**
   * Reads a whole blob (verified like {@link getStream}). `shared`: into a SharedArrayBuffer of the
   * blob's size (data several threads read, with no copy after the download).
   */
  async getBuffer(
    ref: BlobRef,
    options: { sha256?: string; shared?: boolean } = {},
  ): Promise<{ data: Buffer; properties: BlobProperties }> {
    const { shared, ...check } = options;
    const { stream, properties } = await this.getStream(ref, check);
    // Shared: written in place as it arrives (the size is known), instead of chunks joined at the end.
    let into = shared ? Buffer.from(new SharedArrayBuffer(properties.size)) : undefined;
    let at = 0;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) {
        const c = chunk as Buffer;
        if (into && at + c.length <= into.length) at += c.copy(into, at);
        else {
          // More than the blob's stated size (it changed meanwhile): join chunks after all.
          if (into) chunks.push(into.subarray(0, at));
          into = undefined;
          chunks.push(c);
        }
      }
    } catch (err) {
      throw mapStorageError(err, 'blob', `read ${this.describe(ref)}`);
    }
    return { data: into ? into.subarray(0, at) : Buffer.concat(chunks), properties };
  }

  /** Reads and parses a JSON blob, validating it with `schema` when given. */
  async getJson<T = unknown>(ref: BlobRef, schema?: ZodType<T>): Promise<{ value: T; etag: string }> {
    const { data, properties } = await this.getBuffer(ref);
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch (err) {
      throw new NonRetriableError('BLOB_NOT_JSON', `blob ${this.describe(ref)} is not valid JSON`, {
        cause: err,
      });
    }
    if (!schema) return { value: json as T, etag: properties.etag };
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new NonRetriableError(
        'BLOB_INVALID',
        `blob ${this.describe(ref)} does not match its schema: ${parsed.error.message}`,
      );
    }
    return { value: parsed.data, etag: properties.etag };
  }

  /** Like {@link getJson}, but `undefined` when the blob does not exist. */
  async tryGetJson<T = unknown>(
    ref: BlobRef,
    schema?: ZodType<T>,
  ): Promise<{ value: T; etag: string } | undefined> {
    try {
      return await this.getJson(ref, schema);
    } catch (err) {
      if ((err as { code?: string }).code === 'BLOB_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /** Properties and metadata, or `undefined` when the blob does not exist. */
  async properties(ref: BlobRef): Promise<BlobProperties | undefined> {
    const location = this.locate(ref);
    try {
      const p = await this.blob(location).getProperties();
      return {
        etag: p.etag ?? '',
        size: p.contentLength ?? 0,
        contentType: p.contentType,
        metadata: p.metadata ?? {},
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw mapStorageError(err, 'blob', `read properties of ${location.container}/${location.path}`);
    }
  }

  async exists(ref: BlobRef): Promise<boolean> {
    return (await this.properties(ref)) !== undefined;
  }

  /**
   * The names of the "folders" directly under `prefix` (blob name prefixes up to the next `/`,
   * without it), in name order: one listing call per 5,000 folders, whatever they hold. A missing
   * container has none.
   */
  async *listFolders(container: string, prefix = ''): AsyncGenerator<string> {
    const client = this.service.getContainerClient(container);
    try {
      for await (const item of client.listBlobsByHierarchy('/', { prefix })) {
        if (item.kind === 'prefix') yield item.name.slice(prefix.length).replace(/\/$/, '');
      }
    } catch (err) {
      if (statusOf(err) === 404) return; // no container yet: no folders
      throw mapStorageError(err, 'blob', `list folders of ${container}/${prefix}`);
    }
  }

  /** Every blob in `container` whose path starts with `prefix`, in name order. */
  async *list(container: string, prefix = ''): AsyncGenerator<BlobListing> {
    const client = this.service.getContainerClient(container);
    try {
      for await (const item of client.listBlobsFlat({ prefix })) {
        yield {
          container,
          path: item.name,
          uri: client.getBlobClient(item.name).url,
          size: item.properties.contentLength ?? 0,
          etag: item.properties.etag,
          lastModified: item.properties.lastModified,
          contentType: item.properties.contentType,
        };
      }
    } catch (err) {
      throw mapStorageError(err, 'blob', `list ${container}/${prefix}`);
    }
  }

  /** Deletes a blob; false when it was not there. */
  async delete(ref: BlobRef): Promise<boolean> {
    const location = this.locate(ref);
    try {
      return (await this.blob(location).deleteIfExists()).succeeded;
    } catch (err) {
      throw mapStorageError(err, 'blob', `delete ${location.container}/${location.path}`);
    }
  }

  /**
   * Reads the properties of the first artifact container: proves the endpoint answers, the credential
   * may read, and the containers exist (NonRetriableError `BLOB_NOT_FOUND` when they do not).
   */
  async ping(abortSignal?: AbortSignal): Promise<void> {
    const name = Object.values(resources.blobContainers)[0] ?? 'datasets';
    try {
      await this.service.getContainerClient(name).getProperties({ abortSignal });
    } catch (err) {
      throw mapStorageError(err, 'blob', `read container ${name}`);
    }
  }

  containerClient(container: string): ContainerClient {
    return this.service.getContainerClient(container);
  }

  private locate(ref: BlobRef): BlobLocation {
    return typeof ref === 'string' ? this.parseUri(ref) : ref;
  }

  private describe(ref: BlobRef): string {
    const l = this.locate(ref);
    return `${l.container}/${l.path}`;
  }

  private blob(location: BlobLocation): BlobClient {
    return this.service.getContainerClient(location.container).getBlobClient(location.path);
  }
}

/** Fails the stream at its end when the content does not hash to the expected SHA-256. */
class DigestCheck extends Transform {
  private readonly hash = createHash('sha256');
  constructor(
    private readonly expected: string,
    private readonly name: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    const actual = this.hash.digest('hex');
    if (actual === this.expected) callback();
    else {
      callback(
        new NonRetriableError(
          'BLOB_DIGEST_MISMATCH',
          `blob ${this.name} has SHA-256 ${actual}, expected ${this.expected}`,
        ),
      );
    }
  }
}

function isAlreadyThere(err: unknown): boolean {
  const status = statusOf(err);
  return status === 409 || status === 412;
}

/**
 * Splits a blob URI into account, container and path. Path-style URIs (an IP address or localhost,
 * as Azurite uses) carry the account as the first path segment; Azure URIs carry it in the host.
 */
export function parseBlobUri(uri: string): { account: string; container: string; path: string } {
  const invalid = (why: string) =>
    new ValidationError('INVALID_BLOB_URI', `${uri} is not a blob URI: ${why}`, { field: 'uri' });
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid('not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid('scheme must be http or https');
  if (url.search || url.hash) throw invalid('it must not carry a query (SAS) or fragment');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const pathStyle = isIP(host) !== 0 || host === 'localhost';
  const segments = url.pathname.split('/').slice(1);
  const account = pathStyle ? segments.shift() : host.split('.', 1)[0];
  const container = segments.shift();
  if (!account) throw invalid('no account');
  if (!container || !CONTAINER_NAME.test(container)) throw invalid('no valid container name');
  if (segments.length === 0 || segments.some((s) => s === '')) throw invalid('no blob path');
  let path: string;
  try {
    path = segments.map((s) => decodeURIComponent(s)).join('/');
  } catch {
    throw invalid('bad percent-encoding');
  }
  return { account, container, path };
}
