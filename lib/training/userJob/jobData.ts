import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ColumnSource } from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import type * as ParquetWriter from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import type { DatasetContract } from '../../contracts/datasetContract';
import type { SluiceVariable } from '../../contracts/job';
import { NonRetriableError } from '../../errors';
import { formatCsvField } from '../../data/reading/csvWrite';
import type { Column, Table } from '../../data/table';
import { BOOL_NULL, isDictionary, isNullAt, NULL_CODE } from '../../data/table';
import { datasetFromTable } from '../dataset';
import { inferClasses } from '../features';
import type { SplitFractions } from '../split';
import { splitByRowHash } from '../split';
import type { FeatureSpec } from '../../mlmodel/onnxModel';
import type { Task } from '../models/train';

/**
 * The data side of `sluice.job/v1`: the validated table, split by the same deterministic row hash
 * as the built-in training, written as CSV and Parquet files a job opens by path, with the dataset
 * contract next to them. Only the feature columns and the target are written (features first, in
 * the spec's order, then the target); rows whose target is missing are left out, as the built-in
 * algorithms leave them out.
 */

// hyparquet-writer ships only ES modules: Node 22 loads them with require(), TypeScript (node16) cannot type that import.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parquetWriter = (): typeof ParquetWriter => require('hyparquet-writer') as typeof ParquetWriter;

export type { Task };
export type FeatureKind = FeatureSpec['kind'];

export interface JobDataInput {
  /** The validated table, its columns already the contract's types (`conformTable`). */
  table: Table;
  contract: DatasetContract;
  target: string;
  features: readonly string[];
  seed: number;
  split: SplitFractions & { key?: readonly string[] };
  /** Default: classification when the target is a category, string or boolean, else regression. */
  task?: Task;
  /**
   * Where the Parquet files are written: `thread` (default) in a worker thread while this thread
   * writes the CSV files, so the two formats cost about the time of the slower one; `main` here,
   * after each CSV (same bytes, for comparison and for hosts without worker threads).
   */
  parquetIn?: 'thread' | 'main';
}

export interface JobPart {
  csv: string;
  parquet: string;
  rows: number;
}

export interface JobData {
  dir: string;
  train: JobPart;
  validation: JobPart;
  holdout: JobPart;
  contractFile: string;
  target: string;
  features: string[];
  /** How a model sees each feature: numbers and integers are `number`, everything else `string`. */
  featureKinds: { name: string; kind: FeatureKind }[];
  task: Task;
  /** Classification: the class labels seen in the training rows, sorted as the built-in models sort them. */
  classes?: string[];
  seed: number;
  /** Rows left out because their target is missing. */
  missingTarget: number;
  /** A few holdout rows (features only), to score the returned model with. */
  sample: Record<string, unknown>[];
}

const SAMPLE_ROWS = 5;

/** Splits the table and writes `train|validation|holdout.{csv,parquet}` and `contract.json` into `dir`. */
export async function writeJobData(dir: string, input: JobDataInput): Promise<JobData> {
  const { table, target } = input;
  const features = [...input.features];
  if (features.length === 0) throw new NonRetriableError('no_features', 'the job has no feature columns');
  if (features.includes(target))
    throw new NonRetriableError('target_is_feature', `the target "${target}" is also listed as a feature`);
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const missing = [...features, target].filter((n) => !byName.has(n));
  if (missing.length)
    throw new NonRetriableError(
      'missing_column',
      `the dataset has no column ${missing.map((m) => `"${m}"`).join(', ')} (columns: ${table.columns.map((c) => c.name).join(', ')})`,
    );
  const targetCol = byName.get(target)!;
  const task: Task =
    input.task ?? (isDictionary(targetCol) || targetCol.type === 'boolean' ? 'classification' : 'regression');
  if (task === 'regression' && (isDictionary(targetCol) || targetCol.type === 'boolean'))
    throw new NonRetriableError(
      'target_not_numeric',
      `regression needs a numeric target; "${target}" is ${targetCol.type}`,
    );

  const ds = datasetFromTable(table);
  const key = input.split.key ?? [target, ...features].sort();
  const split = splitByRowHash(ds, input.split, input.seed, key);
  const hasTarget = (r: number) => !isNullAt(targetCol, r);
  const parts = {
    train: split.train.filter(hasTarget),
    validation: split.validation.filter(hasTarget),
    holdout: split.holdout.filter(hasTarget),
  };
  const missingTarget =
    split.train.length +
    split.validation.length +
    split.holdout.length -
    parts.train.length -
    parts.validation.length -
    parts.holdout.length;
  if (parts.train.length === 0)
    throw new NonRetriableError('no_training_rows', 'the split left no training rows with a target');

  await mkdir(dir, { recursive: true });
  const columns = [...features, target].map((n) => byName.get(n)!);
  const names = ['train', 'validation', 'holdout'] as const;
  const tables = names.map((name) => selectTable(columns, parts[name]));
  const files = names.map((name) => ({
    csv: join(dir, `${name}.csv`),
    parquet: join(dir, `${name}.parquet`),
  }));
  const parquetDone =
    input.parquetIn === 'main'
      ? undefined
      : writeParquetInThread(tables.map((table, i) => ({ file: files[i]!.parquet, table })));
  // Settled below in every case; this keeps a thread failure from counting as unhandled meanwhile.
  parquetDone?.catch(() => undefined);
  const written = {} as Record<(typeof names)[number], JobPart>;
  try {
    for (const [i, name] of names.entries()) {
      const { csv, parquet } = files[i]!;
      await writeTableCsv(csv, tables[i]!);
      if (!parquetDone) writeParquet(parquet, tables[i]!);
      written[name] = { csv, parquet, rows: tables[i]!.rows };
    }
  } finally {
    await parquetDone?.catch(() => undefined);
  }
  await parquetDone;
  const contractFile = join(dir, 'contract.json');
  await writeFile(contractFile, `${JSON.stringify(input.contract, null, 2)}\n`);

  const holdoutOrTrain = parts.holdout.length ? parts.holdout : parts.train;
  const sample = Array.from(holdoutOrTrain.subarray(0, SAMPLE_ROWS), (r) =>
    Object.fromEntries(features.map((f) => [f, jsonValue(byName.get(f)!, r)])),
  );
  return {
    dir,
    ...written,
    contractFile,
    target,
    features,
    featureKinds: features.map((name) => {
      const t = byName.get(name)!.type;
      return { name, kind: t === 'number' || t === 'integer' ? 'number' : 'string' };
    }),
    task,
    classes: task === 'classification' ? inferClasses(ds, target, parts.train) : undefined,
    seed: input.seed,
    missingTarget,
    sample,
  };
}

/** The contract's variables that name a data file, with that file: what remote backends stage. */
export function jobDataFiles(data: JobData) {
  return {
    SLUICE_TRAIN: data.train.csv,
    SLUICE_VALIDATION: data.validation.csv,
    SLUICE_HOLDOUT: data.holdout.csv,
    SLUICE_TRAIN_PARQUET: data.train.parquet,
    SLUICE_VALIDATION_PARQUET: data.validation.parquet,
    SLUICE_HOLDOUT_PARQUET: data.holdout.parquet,
    SLUICE_CONTRACT: data.contractFile,
  } satisfies Partial<Record<SluiceVariable, string>>;
}

/** The contract's data variables for these files. */
export function jobDataVariables(data: JobData): Partial<Record<SluiceVariable, string>> {
  return {
    ...jobDataFiles(data),
    SLUICE_TARGET: data.target,
    SLUICE_FEATURES: JSON.stringify(data.features),
    SLUICE_TASK: data.task,
    SLUICE_SEED: String(data.seed),
  };
}

/** The given rows of the given columns, as a new table (dictionaries shared, values copied). */
export function selectTable(columns: readonly Column[], rows: ArrayLike<number>): Table {
  const n = rows.length;
  return {
    rows: n,
    columns: columns.map((c): Column => {
      if (isDictionary(c)) {
        const codes = new Int32Array(n);
        for (let i = 0; i < n; i++) codes[i] = c.codes[rows[i]!]!;
        return { ...c, codes };
      }
      if (c.type === 'boolean') {
        const values = new Uint8Array(n);
        for (let i = 0; i < n; i++) values[i] = c.values[rows[i]!]!;
        return { ...c, values };
      }
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = c.values[rows[i]!]!;
      return { ...c, values };
    }),
  };
}

/**
 * The part as CSV (RFC 4180 quoting, LF line ends, header first). Cells are formatted once per
 * dictionary entry and numbers with String(), so a 100k-row part takes a fraction of the job's own
 * time; raw: the file is data for a program, not a spreadsheet, so no formula neutralizing.
 */
export async function writeTableCsv(file: string, table: Table): Promise<void> {
  const cell = table.columns.map((c): ((i: number) => string) => {
    if (isDictionary(c)) {
      const texts = c.dictionary.map((d) => formatCsvField(d, { raw: true }));
      return (i) => {
        const code = c.codes[i]!;
        return code === NULL_CODE ? '' : texts[code]!;
      };
    }
    if (c.type === 'boolean')
      return (i) => (c.values[i] === BOOL_NULL ? '' : c.values[i] === 1 ? 'true' : 'false');
    if (c.type === 'datetime')
      return (i) => (Number.isNaN(c.values[i]!) ? '' : new Date(c.values[i]!).toISOString());
    return (i) => (Number.isNaN(c.values[i]!) ? '' : String(c.values[i]!));
  });
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  let block = `${table.columns.map((c) => formatCsvField(c.name, { raw: true })).join(',')}\n`;
  const last = cell.length - 1;
  for (let i = 0; i < table.rows; i++) {
    for (let j = 0; j < last; j++) block += `${cell[j]!(i)},`;
    block += `${cell[last]!(i)}\n`;
    if (block.length > 1 << 20) {
      if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
      block = '';
    }
  }
  out.end(block);
  await done;
}

/**
 * The part as Parquet: typed columns, nullable, uncompressed (the files are read once, locally;
 * Snappy would cost more time than the job saves reading them).
 */
function writeParquet(file: string, table: Table): void {
  const columnData = table.columns.map((c): ColumnSource => {
    const n = table.rows;
    switch (c.type) {
      case 'number':
        return {
          name: c.name,
          type: 'DOUBLE',
          data: Array.from(c.values, (v) => (Number.isNaN(v) ? null : v)),
        };
      case 'integer':
        return {
          name: c.name,
          type: 'INT64',
          data: Array.from(c.values, (v) => (Number.isNaN(v) ? null : BigInt(v))),
        };
      case 'datetime':
        return {
          name: c.name,
          type: 'TIMESTAMP',
          data: Array.from(c.values, (v) => (Number.isNaN(v) ? null : new Date(v))),
        };
      case 'boolean':
        return {
          name: c.name,
          type: 'BOOLEAN',
          data: Array.from(c.values, (v) => (v === BOOL_NULL ? null : v === 1)),
        };
      case 'category':
      case 'string': {
        const data = new Array<string | null>(n);
        for (let i = 0; i < n; i++) {
          const code = c.codes[i]!;
          data[i] = code === NULL_CODE ? null : c.dictionary[code]!;
        }
        return { name: c.name, type: 'STRING', data };
      }
    }
  });
  parquetWriter().parquetWriteFile({ filename: file, columnData, codec: 'UNCOMPRESSED' });
}

/**
 * The thread's program: plain JavaScript (the thread does not load this project's TypeScript, in
 * tests or built), the same conversion as `writeParquet` above, on the typed arrays it is sent.
 * Kept byte-identical to `writeParquet` by test/unit/training/jobDataCache.test.ts.
 */
const PARQUET_THREAD_SOURCE = `
const { workerData } = require('node:worker_threads');
const { parquetWriteFile } = require(workerData.module);
const BOOL_NULL = ${BOOL_NULL};
const NULL_CODE = ${NULL_CODE};
const isNull = (v) => Number.isNaN(v);
for (const part of workerData.parts) {
  const columnData = part.columns.map((c) => {
    switch (c.type) {
      case 'number':
        return { name: c.name, type: 'DOUBLE', data: Array.from(c.values, (v) => (isNull(v) ? null : v)) };
      case 'integer':
        return { name: c.name, type: 'INT64', data: Array.from(c.values, (v) => (isNull(v) ? null : BigInt(v))) };
      case 'datetime':
        return { name: c.name, type: 'TIMESTAMP', data: Array.from(c.values, (v) => (isNull(v) ? null : new Date(v))) };
      case 'boolean':
        return { name: c.name, type: 'BOOLEAN', data: Array.from(c.values, (v) => (v === BOOL_NULL ? null : v === 1)) };
      default:
        return { name: c.name, type: 'STRING', data: Array.from(c.codes, (code) => (code === NULL_CODE ? null : c.dictionary[code])) };
    }
  });
  parquetWriteFile({ filename: part.file, columnData, codec: 'UNCOMPRESSED' });
}
`;

/** Writes each table as Parquet (as `writeParquet` does) in a worker thread; resolves when all are written. */
export function writeParquetInThread(parts: readonly { file: string; table: Table }[]): Promise<void> {
  const worker = new Worker(PARQUET_THREAD_SOURCE, {
    eval: true,
    workerData: {
      module: require.resolve('hyparquet-writer'),
      // Structured-cloned (typed arrays are copied in one piece): the CSV writer keeps using them here.
      parts: parts.map(({ file, table }) => ({
        file,
        columns: table.columns.map((c) =>
          isDictionary(c)
            ? { name: c.name, type: c.type, codes: c.codes, dictionary: c.dictionary }
            : { name: c.name, type: c.type, values: c.values },
        ),
      })),
    },
  });
  return new Promise<void>((resolve, reject) => {
    let failed: Error | undefined;
    worker.once('error', (err) => (failed = err));
    worker.once('exit', (code) => {
      if (failed) reject(new Error(`writing the Parquet files failed: ${failed.message}`, { cause: failed }));
      else if (code !== 0) reject(new Error(`the Parquet writer thread exited with code ${code}`));
      else resolve();
    });
  });
}

function jsonValue(col: Column, r: number): unknown {
  if (isNullAt(col, r)) return null;
  if (isDictionary(col)) return col.dictionary[col.codes[r]!];
  if (col.type === 'boolean') return col.values[r] === 1 ? 'true' : 'false'; // as in the CSV
  if (col.type === 'datetime') return new Date(col.values[r]!).toISOString();
  return col.values[r];
}
