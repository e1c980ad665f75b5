import { z } from 'zod';
import { datasetContractSchema } from './datasetContract';
import { runSourceSchema } from './runDocument';
import { defineActivity } from './activity';

/**
 * Contracts of the data steps. Payloads are references: blob URIs with SHA-256 digests and small
 * summaries; the data, its columnar form and the validation report stay in Blob Storage.
 */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');
export const blobDigestSchema = z.object({
  uri: z.string().min(1),
  sha256,
  bytes: z.number().int().nonnegative(),
});

/** Where the contract comes from: a stored pipeline version, or inline (small contracts, tools, tests). */
const contractSource = {
  pipeline: z.object({ name: z.string().min(1).max(64), version: z.number().int().positive() }).optional(),
  contract: datasetContractSchema.optional(),
};

export const ingestDatasetInputSchema = z.object({
  runId: z.string().max(200).optional(),
  source: runSourceSchema,
  delimiter: z.string().length(1).optional(),
  ...contractSource,
});

export const ingestDatasetOutputSchema = z.object({
  raw: blobDigestSchema,
  columnar: blobDigestSchema,
  format: z.enum(['csv', 'jsonl', 'parquet']),
  rows: z.number().int().nonnegative(),
  columns: z.number().int().nonnegative(),
  gzip: z.boolean(),
  lineEndings: z.enum(['lf', 'crlf', 'mixed', 'none']),
  /** Up to 20 columns with values unreadable as their declared type; `parseIssueColumns` counts all. */
  parseIssues: z.array(z.object({ column: z.string(), count: z.number().int() })).max(20),
  parseIssueColumns: z.number().int().nonnegative(),
  /** False when both blobs were already stored (a re-run). */
  created: z.boolean(),
});
export type IngestDatasetOutput = z.infer<typeof ingestDatasetOutputSchema>;

/** Streams the run's source into Blob (content-addressed) and writes its columnar form. */
export const ingestDatasetActivity = defineActivity(
  'ingestDataset',
  ingestDatasetInputSchema,
  ingestDatasetOutputSchema,
  {
    firstRetryIntervalMs: 2_000,
    maxAttempts: 3,
    backoffCoefficient: 2,
    maxRetryIntervalMs: 20_000,
  },
);

export const validateDatasetInputSchema = z.object({
  runId: z.string().max(200).optional(),
  /** The columnar form from ingestDataset, and the raw digest it came from (named in the report). */
  dataset: z.object({
    columnar: blobDigestSchema,
    raw: blobDigestSchema.optional(),
    format: z.enum(['csv', 'jsonl', 'parquet']).optional(),
  }),
  /**
   * The reference to compare with: the columnar form of the data the production model was trained
   * on (the orchestrator resolves it from the registry). Omitted: the contract's fixed reference if
   * it has one, else drift is skipped and the report says why.
   */
  reference: z.object({ columnar: blobDigestSchema, raw: blobDigestSchema.optional() }).optional(),
  ...contractSource,
});

export const validateDatasetOutputSchema = z.object({
  report: blobDigestSchema,
  status: z.enum(['passed', 'warning', 'failed']),
  /** False stops the run: errors, a drifted dataset under `onDrift: fail`, or what `drift.verdict.failOn` names. */
  passed: z.boolean(),
  headline: z.string().max(1_000),
  errors: z.number().int().nonnegative(),
  warnings: z.number().int().nonnegative(),
  failedRules: z.array(z.string()).max(20),
  drift: z.enum(['drifted', 'stable', 'notTestable', 'skipped']),
  driftedColumns: z.array(z.string()).max(20),
  breakingSchemaChanges: z.number().int().nonnegative(),
});
export type ValidateDatasetOutput = z.infer<typeof validateDatasetOutputSchema>;

/** Checks the columnar dataset against the contract and the reference; writes the report to Blob. */
export const validateDatasetActivity = defineActivity(
  'validateDataset',
  validateDatasetInputSchema,
  validateDatasetOutputSchema,
);
