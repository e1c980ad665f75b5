import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { DataFormatError } from '../errors';
import type { IngestLimits } from '../limits';

/**
 * The byte layer under both parsers: counts and hashes the raw upload, refuses it past the size
 * limit, gunzips it (gzip is recognized by its magic bytes) with caps on size and ratio, strips a
 * UTF-8 byte-order mark, and refuses UTF-16/32, bytes that are not UTF-8, and NUL bytes — each
 * with its own code, at the first offending chunk.
 */

export type ByteSource = AsyncIterable<Uint8Array> | Uint8Array;

export interface InputSummary {
  /** SHA-256 (hex) of the bytes as received (compressed if gzip). */
  sha256: string;
  /** Bytes as received. */
  bytes: number;
  /** Bytes after decompression (equal to `bytes` unless gzip). */
  decodedBytes: number;
  gzip: boolean;
  bom: boolean;
}

/** A gzip stream is judged for its ratio only after this much output (small files compress oddly). */
const RATIO_GRACE_BYTES = 1 << 20;

type Magic = 'gzip' | 'zip' | 'parquet' | 'xz' | 'bzip2' | 'png' | 'jpeg' | 'gif' | 'pdf';

function magic(head: Uint8Array): Magic | undefined {
  const b = (i: number): number => head[i] ?? -1;
  const ascii = (text: string, at = 0): boolean => [...text].every((c, i) => b(at + i) === c.charCodeAt(0));
  if (b(0) === 0x1f && b(1) === 0x8b) return 'gzip';
  if (b(0) === 0x50 && b(1) === 0x4b && b(2) === 0x03 && b(3) === 0x04) return 'zip';
  if (ascii('PAR1')) return 'parquet';
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58) return 'xz';
  if (ascii('BZh')) return 'bzip2';
  if (b(0) === 0x89 && ascii('PNG\r\n\x1a\n', 1)) return 'png';
  if (b(0) === 0xff && b(1) === 0xd8 && b(2) === 0xff) return 'jpeg';
  if (ascii('GIF87a') || ascii('GIF89a')) return 'gif';
  if (ascii('%PDF-')) return 'pdf';
  return undefined;
}

const binaryNames: Record<Exclude<Magic, 'gzip' | 'parquet'>, string> = {
  zip: 'a ZIP archive (xlsx, docx and jar files are ZIP too)',
  xz: 'xz-compressed data',
  bzip2: 'bzip2-compressed data',
  png: 'a PNG image',
  jpeg: 'a JPEG image',
  gif: 'a GIF image',
  pdf: 'a PDF document',
};

/**
 * What binary content the first bytes of a dataset are, when they are not text Sluice reads
 * (gzip and Parquet are fine): a known file signature, or a NUL byte in the head. Undefined for
 * anything that may be text.
 */
export function sniffBinary(head: Uint8Array): string | undefined {
  const kind = magic(head);
  if (kind === 'gzip' || kind === 'parquet') return undefined;
  if (kind) return binaryNames[kind];
  const probe = head.subarray(0, 8192);
  const nul = probe.indexOf(0);
  if (nul === -1) return undefined;
  return looksUtf16(probe)
    ? 'UTF-16 or UTF-32 text (save it as UTF-8)'
    : `binary data (a NUL byte at byte ${nul})`;
}

/** Looks like UTF-16 without a BOM: text with a NUL in every other byte. */
function looksUtf16(head: Uint8Array): boolean {
  const n = Math.min(head.length, 64) & ~1;
  if (n < 4) return false;
  let evenNul = 0;
  let oddNul = 0;
  for (let i = 0; i < n; i += 2) {
    if (head[i] === 0) evenNul++;
    if (head[i + 1] === 0) oddNul++;
  }
  return evenNul >= n / 4 || oddNul >= n / 4;
}

/** Length of a trailing, possibly unfinished UTF-8 sequence (0–3 bytes) to carry to the next chunk. */
function incompleteTail(buf: Uint8Array): number {
  const n = buf.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const c = buf[n - back]!;
    if ((c & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/** A ByteSource as chunks: the buffer itself, or the stream's chunks. */
export async function* byteChunks(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) yield source;
  else yield* source;
}

/**
 * Streams `source` through the checks into `sink` (text bytes: UTF-8, no BOM). Resolves with the
 * summary once the sink has taken every byte; rejects with a DataFormatError on bad input.
 */
export async function readInput(
  source: ByteSource,
  limits: IngestLimits,
  sink: (chunk: Uint8Array) => void,
): Promise<InputSummary> {
  const hash = createHash('sha256');
  let bytes = 0;
  let decodedBytes = 0;
  let first = true;
  let bom = false;
  let tail: Uint8Array | undefined;

  const raw = byteChunks(source);
  let head = await raw.next();
  while (!head.done && head.value.length === 0) head = await raw.next();
  if (head.done) throw new DataFormatError('INPUT_EMPTY', '');
  const kind = magic(head.value);
  if (kind && kind !== 'gzip') {
    throw new DataFormatError(
      'INPUT_UNSUPPORTED_FORMAT',
      kind === 'parquet' ? 'Parquet data where text was expected' : binaryNames[kind],
    );
  }

  async function* counted(): AsyncGenerator<Uint8Array> {
    const take = (chunk: Uint8Array): Uint8Array => {
      bytes += chunk.length;
      if (bytes > limits.maxBytes)
        throw new DataFormatError('INPUT_TOO_LARGE', `more than ${limits.maxBytes} bytes`);
      hash.update(chunk);
      return chunk;
    };
    if (!head.done) yield take(head.value as Uint8Array);
    for (let r = await raw.next(); !r.done; r = await raw.next()) yield take(r.value);
  }

  const text = (chunk: Uint8Array, gz: boolean): void => {
    if (chunk.length === 0) return;
    decodedBytes += chunk.length;
    if (gz) {
      if (decodedBytes > limits.maxBytes)
        throw new DataFormatError('GZIP_TOO_LARGE', `more than ${limits.maxBytes} bytes decompressed`);
      if (decodedBytes > RATIO_GRACE_BYTES && decodedBytes / Math.max(bytes, 1) > limits.maxGzipRatio) {
        throw new DataFormatError('GZIP_RATIO', `over ${limits.maxGzipRatio}:1`);
      }
    }
    let buf = chunk;
    if (tail) {
      buf = Buffer.concat([tail, chunk]);
      tail = undefined;
    }
    if (first) {
      if (buf.length < 4) {
        tail = Buffer.from(buf); // too short to judge the encoding yet
        return;
      }
      first = false;
      const [a, b, c, d] = [buf[0], buf[1], buf[2], buf[3]];
      if (
        (a === 0xff && b === 0xfe) ||
        (a === 0xfe && b === 0xff) ||
        (a === 0 && b === 0 && c === 0xfe && d === 0xff)
      ) {
        throw new DataFormatError('INPUT_UTF16', 'byte-order mark found');
      }
      if (a === 0xef && b === 0xbb && c === 0xbf) {
        bom = true;
        buf = buf.subarray(3);
      } else if (looksUtf16(buf)) throw new DataFormatError('INPUT_UTF16', 'every other byte is NUL');
    }
    const nul = buf.indexOf(0);
    if (nul !== -1)
      throw new DataFormatError('INPUT_NUL_BYTE', `at byte ${decodedBytes - chunk.length + nul}`);
    const keep = incompleteTail(buf);
    const body = keep ? buf.subarray(0, buf.length - keep) : buf;
    if (!isUtf8(body)) {
      const at = firstInvalid(body);
      const byte = body[at] ?? 0;
      throw new DataFormatError(
        'INPUT_NOT_UTF8',
        `byte 0x${byte.toString(16)} near byte ${decodedBytes - chunk.length + at}${byte >= 0xa0 ? ' (Latin-1 or Windows-1252?)' : ''}`,
      );
    }
    if (keep) tail = Buffer.from(buf.subarray(buf.length - keep));
    if (body.length) sink(body);
  };

  if (kind === 'gzip') {
    // The first refusal wins: aborting the pipeline surfaces as an AbortError otherwise.
    let refusal: DataFormatError | undefined;
    await pipeline(Readable.from(counted()), createGunzip(), async (decoded: AsyncIterable<Buffer>) => {
      try {
        for await (const chunk of decoded) text(chunk, true);
      } catch (err) {
        if (err instanceof DataFormatError) refusal = err;
        throw err;
      }
    }).catch((err: unknown) => {
      if (refusal) throw refusal;
      if (err instanceof DataFormatError) throw err;
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('Z_'))
        throw new DataFormatError('GZIP_CORRUPT', (err as Error).message, {}, { cause: err });
      throw err;
    });
  } else {
    for await (const chunk of counted()) text(chunk, false);
  }
  if (tail) {
    const t = tail;
    tail = undefined;
    if (first) {
      first = false;
      if (t.length >= 3 && t[0] === 0xef && t[1] === 0xbb && t[2] === 0xbf) {
        bom = true;
        if (t.length > 3) finalText(t.subarray(3));
      } else if (t.length >= 2 && ((t[0] === 0xff && t[1] === 0xfe) || (t[0] === 0xfe && t[1] === 0xff))) {
        throw new DataFormatError('INPUT_UTF16', 'byte-order mark found');
      } else finalText(t);
    } else finalText(t);
  }
  if (decodedBytes - (bom ? 3 : 0) === 0)
    throw new DataFormatError('INPUT_EMPTY', bom ? 'only a byte-order mark' : '');
  return { sha256: hash.digest('hex'), bytes, decodedBytes, gzip: kind === 'gzip', bom };

  function finalText(t: Uint8Array): void {
    if (t.indexOf(0) !== -1) throw new DataFormatError('INPUT_NUL_BYTE', 'at the end of the input');
    if (!isUtf8(t))
      throw new DataFormatError('INPUT_NOT_UTF8', 'an unfinished UTF-8 sequence at the end of the input');
    sink(t);
  }
}

/** Index of the first byte that breaks UTF-8 (only called once a chunk failed, for the message). */
function firstInvalid(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length) {
    const c = buf[i]!;
    const need =
      c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (need === -1) return i;
    for (let k = 1; k <= need; k++) if (((buf[i + k] ?? 0) & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return 0;
}
