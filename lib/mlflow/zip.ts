import { crc32, deflateRawSync } from 'node:zlib';

/**
 * A minimal ZIP writer (PKWARE APPNOTE 6.3: local file headers, central directory, end record),
 * enough for an MLflow model folder: each file deflated whole (the folder is read one verified
 * file at a time), UTF-8 names, a fixed timestamp so the same folder always zips to the same
 * bytes. No ZIP64: a model folder is bounded far below 4 GiB (512 MiB by default), and a file or
 * archive past the 32-bit fields is refused rather than written wrong.
 */

export interface ZipFile {
  path: string;
  bytes: Uint8Array;
}

const LIMIT = 0xffff_fffe;
/** 1980-01-01 00:00 in MS-DOS date/time: reproducible archives. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const UTF8_NAMES = 0x0800;

/** Yields the archive's bytes as the files arrive. */
export async function* zipFiles(files: AsyncIterable<ZipFile> | Iterable<ZipFile>): AsyncGenerator<Buffer> {
  const central: Buffer[] = [];
  let offset = 0;
  let count = 0;
  for await (const file of files) {
    const name = Buffer.from(file.path, 'utf8');
    const crc = crc32(file.bytes);
    const deflated = deflateRawSync(file.bytes);
    // Incompressible data (an ONNX of float weights often is) is stored as it is.
    const stored = deflated.length >= file.bytes.byteLength;
    const data = stored ? Buffer.from(file.bytes) : deflated;
    const method = stored ? 0 : 8;
    if (file.bytes.byteLength > LIMIT || offset + data.length > LIMIT || count >= 0xffff)
      throw new RangeError(`the archive is too large for ZIP without ZIP64 at ${file.path}`);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(UTF8_NAMES, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(file.bytes.byteLength, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(0x0314, 4); // made by: UNIX, 2.0
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(UTF8_NAMES, 8);
    entry.writeUInt16LE(method, 10);
    entry.writeUInt16LE(DOS_TIME, 12);
    entry.writeUInt16LE(DOS_DATE, 14);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(file.bytes.byteLength, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt16LE(0, 30); // extra
    entry.writeUInt16LE(0, 32); // comment
    entry.writeUInt16LE(0, 34); // disk
    entry.writeUInt16LE(0, 36); // internal attributes
    entry.writeUInt32LE((0o100644 << 16) >>> 0, 38); // -rw-r--r--
    entry.writeUInt32LE(offset, 42);
    central.push(entry, name);
    yield Buffer.concat([local, name]);
    yield data;
    offset += local.length + name.length + data.length;
    count++;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  yield Buffer.concat([directory, end]);
}
