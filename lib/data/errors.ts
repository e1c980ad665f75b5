import { ValidationError } from '../errors';

/**
 * Every way a dataset can be refused before validation starts, with the HTTP status the API answers.
 * docs/data.md lists the same codes for users; keep the two in step.
 */
export const dataErrorCodes = {
  INPUT_EMPTY: { status: 400, text: 'the file is empty' },
  INPUT_HEADER_ONLY: { status: 400, text: 'the file has a header but no data rows' },
  INPUT_TOO_LARGE: { status: 413, text: 'the upload is larger than INGEST_MAX_BYTES' },
  INPUT_NUL_BYTE: { status: 400, text: 'a NUL byte: binary data, or UTF-16/32 without a byte-order mark' },
  INPUT_UTF16: { status: 415, text: 'UTF-16 or UTF-32 text: save the file as UTF-8' },
  INPUT_NOT_UTF8: {
    status: 415,
    text: 'bytes that are not UTF-8 (often Latin-1 or Windows-1252): save the file as UTF-8',
  },
  INPUT_UNSUPPORTED_FORMAT: {
    status: 415,
    text: 'not CSV, JSON Lines or Parquet (images, PDF, zip, xlsx, xz, bzip2 and similar are refused)',
  },
  GZIP_TOO_LARGE: { status: 413, text: 'the decompressed data is larger than INGEST_MAX_BYTES' },
  GZIP_RATIO: { status: 413, text: 'the compression ratio is implausibly high (a gzip bomb)' },
  GZIP_CORRUPT: { status: 400, text: 'the gzip stream is corrupt or truncated' },
  CSV_UNTERMINATED_QUOTE: { status: 400, text: 'a quoted field is never closed' },
  CSV_TEXT_AFTER_QUOTE: { status: 400, text: 'text follows the closing quote of a field' },
  CSV_BARE_CR: { status: 400, text: 'a carriage return that is not part of CRLF, outside quotes' },
  CSV_RAGGED_ROW: { status: 400, text: 'a row has more or fewer fields than the header' },
  HEADER_DUPLICATE: { status: 400, text: 'two columns have the same name' },
  HEADER_EMPTY: { status: 400, text: 'a column has an empty name' },
  JSONL_INVALID: { status: 400, text: 'a line is not valid JSON' },
  JSONL_NOT_OBJECT: { status: 400, text: 'a line is JSON but not an object' },
  JSONL_NESTED_VALUE: { status: 400, text: 'a value is an object or array: flatten it first' },
  PARQUET_TRUNCATED: { status: 400, text: 'the Parquet file is too short to hold a footer (truncated?)' },
  PARQUET_BAD_MAGIC: {
    status: 400,
    text: 'the Parquet file does not end with PAR1: truncated, or not Parquet',
  },
  PARQUET_FOOTER_LENGTH: { status: 400, text: 'the Parquet footer length points outside the file' },
  PARQUET_METADATA_TOO_LARGE: { status: 413, text: 'the Parquet footer (metadata) is implausibly large' },
  PARQUET_METADATA_CORRUPT: { status: 400, text: 'the Parquet footer (metadata) is corrupt' },
  PARQUET_NESTED_COLUMN: {
    status: 415,
    text: 'a nested Parquet column (list, map or struct): flatten it to scalar columns first',
  },
  PARQUET_UNSUPPORTED_TYPE: { status: 415, text: 'a Parquet column type Sluice cannot read' },
  PARQUET_UNSUPPORTED_CODEC: {
    status: 415,
    text: 'a Parquet compression codec Sluice cannot read: rewrite with snappy, gzip, zstd or brotli',
  },
  PARQUET_DECOMPRESSED_TOO_LARGE: {
    status: 413,
    text: 'the Parquet data decompresses to more than INGEST_MAX_BYTES',
  },
  PARQUET_COMPRESSION_RATIO: {
    status: 413,
    text: 'a Parquet page decompresses more than INGEST_MAX_GZIP_RATIO times its size',
  },
  PARQUET_CORRUPT: { status: 400, text: 'the Parquet data is corrupt' },
  LIMIT_FIELD_BYTES: { status: 400, text: 'a field is larger than INGEST_MAX_FIELD_BYTES' },
  LIMIT_ROW_BYTES: { status: 400, text: 'a row is larger than INGEST_MAX_ROW_BYTES' },
  LIMIT_COLUMNS: { status: 400, text: 'more columns than INGEST_MAX_COLUMNS' },
  LIMIT_ROWS: { status: 400, text: 'more rows than INGEST_MAX_ROWS' },
} as const;
export type DataErrorCode = keyof typeof dataErrorCodes;

/** Where in the input a problem is: 1-based data row (the header is row 0), physical line, column. */
export interface DataPosition {
  row?: number;
  line?: number;
  column?: string;
}

/** A dataset refused for a reason the user can fix; never retried. */
export class DataFormatError extends ValidationError {
  override readonly code: DataErrorCode;
  readonly position: DataPosition;
  constructor(
    code: DataErrorCode,
    detail: string,
    position: DataPosition = {},
    options?: { cause?: unknown },
  ) {
    const where = [
      position.line !== undefined ? `line ${position.line}` : undefined,
      position.row !== undefined ? `row ${position.row}` : undefined,
      position.column !== undefined ? `column "${position.column}"` : undefined,
    ].filter(Boolean);
    const message = `${dataErrorCodes[code].text}${where.length ? ` (${where.join(', ')})` : ''}${detail ? `: ${detail}` : ''}`;
    super(code, message, { status: dataErrorCodes[code].status, field: 'body', cause: options?.cause });
    this.code = code;
    this.position = position;
  }
}
