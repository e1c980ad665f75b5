import { createHash } from 'node:crypto';
import { NonRetriableError } from '../../lib/errors';
import type { FolderStore } from '../../lib/mlmodel/blobFolder';
import type { BlobLocation } from '../../lib/storage/blob';

/**
 * The few Blob operations model folders and legacy JSON models need, in memory, with the real
 * store's rules: `create` never overwrites different bytes, a read with `sha256` is refused unless
 * the bytes hash to it. URIs look like the emulator's (`http://127.0.0.1/<account>/<container>/<path>`).
 */
export class MemoryFolderStore {
  readonly blobs = new Map<string, Buffer>();
  reads = 0;
  /** Every key read, in order. */
  readonly readKeys: string[] = [];

  uri(at: BlobLocation): string {
    return `http://127.0.0.1:10000/devstoreaccount1/${at.container}/${at.path}`;
  }

  parseUri(uri: string): BlobLocation {
    const m = /^http:\/\/127\.0\.0\.1:10000\/devstoreaccount1\/([^/]+)\/(.+)$/.exec(uri);
    if (!m) throw new Error(`not a memory store URI: ${uri}`);
    return { container: m[1]!, path: m[2]! };
  }

  private key(ref: string | BlobLocation): string {
    return typeof ref === 'string' ? ref : this.uri(ref);
  }

  async put(ref: string | BlobLocation, data: Uint8Array | string): Promise<{ ok: boolean }> {
    const key = this.key(ref);
    const bytes = Buffer.from(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    const existing = this.blobs.get(key);
    if (existing && !existing.equals(bytes)) return { ok: false };
    this.blobs.set(key, bytes);
    return { ok: true };
  }

  /** Puts bytes at a URI as they are (a test swapping a file). */
  overwrite(uri: string, data: Uint8Array | string): void {
    this.blobs.set(uri, Buffer.from(typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
  }

  async getBuffer(ref: string | BlobLocation, options: { sha256?: string } = {}): Promise<{ data: Buffer }> {
    this.reads++;
    const key = this.key(ref);
    this.readKeys.push(key);
    const data = this.blobs.get(key);
    if (!data) throw Object.assign(new Error(`no blob ${key}`), { code: 'BlobNotFound', statusCode: 404 });
    if (options.sha256) {
      const actual = createHash('sha256').update(data).digest('hex');
      if (actual !== options.sha256) {
        throw new NonRetriableError(
          'BLOB_DIGEST_MISMATCH',
          `${key} hashes to ${actual}, not ${options.sha256}`,
        );
      }
    }
    return { data: Buffer.from(data) };
  }

  /** Typed as the real store's folder operations. */
  get folderStore(): FolderStore {
    return this as unknown as FolderStore;
  }
}
