import type { Config } from '../config';

/** Ingestion limits, checked while streaming (names follow the INGEST_MAX_* settings). */
export interface IngestLimits {
  maxBytes: number;
  maxColumns: number;
  maxFieldBytes: number;
  maxRowBytes: number;
  maxRows: number;
  maxGzipRatio: number;
}

export function limitsFromConfig(config: Pick<Config, `INGEST_MAX_${string}` & keyof Config>): IngestLimits {
  return {
    maxBytes: config.INGEST_MAX_BYTES,
    maxColumns: config.INGEST_MAX_COLUMNS,
    maxFieldBytes: config.INGEST_MAX_FIELD_BYTES,
    maxRowBytes: config.INGEST_MAX_ROW_BYTES,
    maxRows: config.INGEST_MAX_ROWS,
    maxGzipRatio: config.INGEST_MAX_GZIP_RATIO,
  };
}

/** The defaults of lib/config.ts, for library callers and tests without settings. */
export const defaultLimits: IngestLimits = {
  maxBytes: 512 * 1024 * 1024,
  maxColumns: 10_000,
  maxFieldBytes: 1024 * 1024,
  maxRowBytes: 16 * 1024 * 1024,
  maxRows: 50_000_000,
  maxGzipRatio: 200,
};
