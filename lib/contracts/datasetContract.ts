import { z } from 'zod';

/**
 * The dataset contract: what a pipeline expects of its data. It is part of a pipeline definition
 * (composed there as `dataset`), so everything here is plain JSON with defaults that make a short
 * contract useful: `{ columns: [{ name: 'age', type: 'integer' }] }` is a valid contract. It
 * travels in the validateDataset activity's input, so it lives here with no I/O.
 */

export const columnTypes = ['number', 'integer', 'boolean', 'category', 'string', 'datetime'] as const;
export const columnTypeSchema = z.enum(columnTypes);
export type ColumnType = z.infer<typeof columnTypeSchema>;

const columnName = z.string().min(1).max(256);
const literal = z.union([z.string(), z.number(), z.boolean()]);

/** One column: its type and the constraints every value must meet. */
export const columnContractSchema = z
  .object({
    name: columnName,
    type: columnTypeSchema,
    /** Nulls (empty cells or a `nullValues` token) allowed. */
    nullable: z.boolean().default(false),
    /** Inclusive bounds; datetimes as ISO 8601 strings. */
    min: z.union([z.number(), z.iso.datetime({ offset: true, local: true }), z.iso.date()]).optional(),
    max: z.union([z.number(), z.iso.datetime({ offset: true, local: true }), z.iso.date()]).optional(),
    /** Allowed values (category, string, integer, boolean). */
    values: z.array(literal).min(1).max(10_000).optional(),
    /** Regular expression every non-null value must match as a whole (category, string). */
    pattern: z
      .string()
      .max(1000)
      .refine(
        (p) => {
          try {
            new RegExp(p, 'u');
            return true;
          } catch {
            return false;
          }
        },
        { message: 'not a valid regular expression' },
      )
      .optional(),
    /** Every non-null value distinct. */
    unique: z.boolean().default(false),
    description: z.string().max(2000).optional(),
  })
  .refine(
    (c) => c.min === undefined || c.max === undefined || typeof c.min !== typeof c.max || c.min <= c.max,
    {
      message: 'min must not exceed max',
      path: ['min'],
    },
  );
export type ColumnContract = z.infer<typeof columnContractSchema>;
export type ColumnContractInput = z.input<typeof columnContractSchema>;

/**
 * A declarative row-level predicate. Comparisons that involve a null are *unknown*, and a rule
 * fails only when its assertion is definitely false (SQL CHECK semantics): nulls are the business
 * of `nullable`, not of every rule that mentions the column.
 */
export interface ComparisonPredicate {
  column: string;
  op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
  /** A literal, or another column of the same row. */
  value: string | number | boolean | { column: string };
}
export type RowPredicate =
  | ComparisonPredicate
  | { column: string; op: 'in' | 'notIn'; value: (string | number | boolean)[] }
  | { column: string; op: 'isNull' | 'notNull' }
  | { column: string; op: 'matches'; value: string }
  | { all: RowPredicate[] }
  | { any: RowPredicate[] }
  | { not: RowPredicate };

export const rowPredicateSchema: z.ZodType<RowPredicate> = z.lazy(() =>
  z.union([
    z.strictObject({
      column: columnName,
      op: z.enum(['eq', 'ne', 'lt', 'le', 'gt', 'ge']),
      value: z.union([literal, z.strictObject({ column: columnName })]),
    }),
    z.strictObject({ column: columnName, op: z.enum(['in', 'notIn']), value: z.array(literal).max(10_000) }),
    z.strictObject({ column: columnName, op: z.enum(['isNull', 'notNull']) }),
    z.strictObject({ column: columnName, op: z.literal('matches'), value: z.string().max(1000) }),
    z.strictObject({ all: z.array(rowPredicateSchema).min(1).max(50) }),
    z.strictObject({ any: z.array(rowPredicateSchema).min(1).max(50) }),
    z.strictObject({ not: rowPredicateSchema }),
  ]),
);

export const severitySchema = z.enum(['error', 'warning']);
export type Severity = z.infer<typeof severitySchema>;

/** A custom row rule: every row for which `when` holds must satisfy `assert`. */
export const rowRuleSchema = z.object({
  id: z.string().regex(/^[A-Za-z][\w.-]{0,63}$/, 'letters, digits, _ . - (starting with a letter)'),
  description: z.string().max(500).optional(),
  when: rowPredicateSchema.optional(),
  assert: rowPredicateSchema,
  severity: severitySchema.default('error'),
});
export type RowRule = z.infer<typeof rowRuleSchema>;

const fraction = z.number().min(0).max(1);

/** Dataset-level quality rules. Each is optional; absent means "not checked". */
export const qualityRulesSchema = z.object({
  minRows: z.number().int().nonnegative().optional(),
  maxRows: z.number().int().positive().optional(),
  /** Largest share of nulls in any column (a column's own entry wins). */
  maxNullFraction: fraction.optional(),
  maxNullFractionByColumn: z.record(columnName, fraction).optional(),
  maxDuplicateRowFraction: fraction.optional(),
  /** Bounds on each class's share of the target (binary and multiclass tasks). */
  classBalance: z
    .object({ minClassFraction: fraction.optional(), maxClassFraction: fraction.optional() })
    .optional(),
  /** Columns present in the data but not in the contract: ignore them, warn, or fail. */
  unexpectedColumns: z.enum(['ignore', 'warning', 'error']).default('warning'),
  rowRules: z.array(rowRuleSchema).max(100).default([]),
});
export type QualityRules = z.infer<typeof qualityRulesSchema>;

export const driftMetrics = ['psi', 'jensenShannon', 'wasserstein', 'ks'] as const;
export const driftMetricSchema = z.enum(driftMetrics);
export type DriftMetric = z.infer<typeof driftMetricSchema>;

const thresholdsSchema = z.object({
  psi: z.number().positive().default(0.2),
  jensenShannon: z.number().positive().max(1).default(0.1),
  wasserstein: z.number().positive().default(0.1),
  ks: z.number().positive().max(1).default(0.1),
});
const columnDriftSchema = z.object({
  metrics: z.array(driftMetricSchema).min(1).optional(),
  thresholds: thresholdsSchema.partial().optional(),
  /** Weight in the dataset verdict (importance); 0 reports the column but never counts it. */
  weight: z.number().min(0).default(1),
  ignore: z.boolean().default(false),
});

/** What `drift.verdict.failOn` may name: findings of the comparison with the reference that stop a run. */
export const validationFailOn = ['columnDrift', 'breakingSchemaChange'] as const;
export type ValidationFailOn = (typeof validationFailOn)[number];

/**
 * Drift settings. Metrics are effect sizes with thresholds, not p-values: a p-value test flags
 * every column once samples are large. KS p-values are reported (Holm-adjusted across columns)
 * and decide only when `ksPValue` is set.
 */
export const driftSettingsSchema = z.object({
  enabled: z.boolean().default(true),
  /** The reference: the data the production model was trained on, or a fixed dataset. */
  reference: z
    .discriminatedUnion('kind', [
      z.object({ kind: z.literal('production') }),
      z.object({
        kind: z.literal('dataset'),
        uri: z.string().min(1),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
      }),
    ])
    .default({ kind: 'production' }),
  /** Metrics per column type: PSI and Jensen–Shannon for categories; PSI, Wasserstein and KS for numbers. */
  categorical: z
    .array(z.enum(['psi', 'jensenShannon']))
    .min(1)
    .default(['psi', 'jensenShannon']),
  numeric: z.array(driftMetricSchema).min(1).default(['psi', 'wasserstein', 'ks']),
  thresholds: thresholdsSchema.prefault({}),
  /** A column is drifted when `any` (or `all`) of its metrics exceed their thresholds. */
  columnRule: z.enum(['any', 'all']).default('any'),
  /** Below this many non-null values on either side a column is "not testable", never "drifted". */
  minSampleSize: z.number().int().positive().default(100),
  /** Number of reference-quantile bins for PSI and Jensen–Shannon on numbers. */
  bins: z.number().int().min(2).max(100).default(10),
  /** Optional significance gate on KS (Holm–Bonferroni over the tested columns). */
  ksPValue: z.object({ alpha: z.number().gt(0).lt(1) }).optional(),
  columns: z.record(columnName, columnDriftSchema).default({}),
  /**
   * Dataset verdict: drifted when the weighted share of drifted testable columns reaches
   * `driftedShare`, or when any `critical` column drifts.
   */
  verdict: z
    .object({
      driftedShare: fraction.default(0.5),
      critical: z.array(columnName).default([]),
      /** What a drifted dataset does to the run: stop it (`fail`) or only report (`warn`). */
      onDrift: z.enum(['fail', 'warn']).default('fail'),
      /**
       * Findings that stop the run besides a drifted dataset. Without them each is a warning on the
       * run, the CLI and the approval page: `columnDrift` (any one drifted column) and
       * `breakingSchemaChange` (a change to the schema the production model was trained on).
       */
      failOn: z
        .array(z.enum(validationFailOn))
        .max(validationFailOn.length)
        .default([])
        .refine((a) => new Set(a).size === a.length, { message: 'failOn names a finding twice' }),
    })
    .prefault({}),
});
export type DriftSettings = z.infer<typeof driftSettingsSchema>;
export type DriftThresholds = z.infer<typeof thresholdsSchema>;

export const taskSchema = z.enum(['binary', 'multiclass', 'regression']);
export type Task = z.infer<typeof taskSchema>;

/** The dataset contract of a pipeline. */
export const datasetContractSchema = z
  .object({
    columns: z.array(columnContractSchema).min(1).max(10_000),
    target: columnName.optional(),
    task: taskSchema.optional(),
    /** Cell texts read as null (CSV); JSON null and absent keys are always null. */
    nullValues: z.array(z.string().max(64)).max(50).default(['', 'NA', 'N/A', 'null', 'NULL', 'NaN']),
    quality: qualityRulesSchema.prefault({}),
    drift: driftSettingsSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.columns.forEach((col, i) => {
      if (seen.has(col.name))
        ctx.addIssue({
          code: 'custom',
          path: ['columns', i, 'name'],
          message: `duplicate column "${col.name}"`,
        });
      seen.add(col.name);
    });
    if (c.target !== undefined && !seen.has(c.target)) {
      ctx.addIssue({
        code: 'custom',
        path: ['target'],
        message: `target "${c.target}" is not a declared column`,
      });
    }
    if ((c.target === undefined) !== (c.task === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [c.target === undefined ? 'target' : 'task'],
        message: 'target and task go together',
      });
    }
    const target = c.columns.find((col) => col.name === c.target);
    if (target && c.task === 'regression' && target.type !== 'number' && target.type !== 'integer') {
      ctx.addIssue({
        code: 'custom',
        path: ['task'],
        message: 'a regression target must be number or integer',
      });
    }
    if (
      target &&
      (c.task === 'binary' || c.task === 'multiclass') &&
      (target.type === 'number' || target.type === 'datetime')
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['task'],
        message: `a ${c.task} target must be category, integer, boolean or string`,
      });
    }
    for (const name of [...Object.keys(c.drift.columns), ...c.drift.verdict.critical]) {
      if (!seen.has(name))
        ctx.addIssue({
          code: 'custom',
          path: ['drift'],
          message: `drift settings name unknown column "${name}"`,
        });
    }
  });
export type DatasetContract = z.infer<typeof datasetContractSchema>;
export type DatasetContractInput = z.input<typeof datasetContractSchema>;

/** Parses a contract (throws a ZodError naming every bad field). */
export function parseDatasetContract(input: unknown): DatasetContract {
  return datasetContractSchema.parse(input);
}
