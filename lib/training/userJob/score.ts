import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CustomTrainingSpec } from '../../contracts/trainingSpec';
import { SCORE_COMMAND_VARIABLE_NAMES } from '../../contracts/job';
import { NonRetriableError } from '../../errors';
import { formatCsvField } from '../../data/reading/csvWrite';
import type { Table } from '../../data/table';
import type { Scores } from '../../mlmodel/onnxModel';
import { checkPredictions } from '../../mlmodel/check';
import { commandArgv } from './command';
import { writeTableCsv } from './jobData';
import { runJobProcess } from './process';
import { defaultBaseEnv, UserJobError } from './run';

/**
 * Scoring a model that has no ONNX file (a python_function-only MLflow folder) with the pipeline's
 * own `score` command: Sluice writes the rows' features to a CSV file, runs the command in the code
 * folder as it runs a training job (no shell, own process group, time limit, cancel), and reads one
 * prediction per row back from SLUICE_PREDICTIONS. What comes back is checked like an ONNX model's
 * sample (finite values; probabilities in [0, 1] summing to 1; known labels) before evaluation uses
 * it. The format is docs/training.md, "Scoring a model without ONNX".
 */

export interface ScoreCommandOptions {
  /** The pipeline's custom spec: `score` (the command), `code`, `features`, `target`, `task`, `hyperparameters`. */
  spec: Pick<
    CustomTrainingSpec,
    'code' | 'score' | 'features' | 'target' | 'task' | 'hyperparameters' | 'timeLimitSeconds'
  >;
  /** The model folder (downloaded and verified by the caller); SLUICE_MODEL. */
  modelDir: string;
  /**
   * The rows to score: a table with (at least) the feature columns, row objects keyed by feature, or
   * the path of a CSV file of the features (header first), passed to the command as it is.
   */
  rows: Table | readonly Record<string, unknown>[] | string;
  /** A fresh folder for this call: input.csv, predictions and score.log go here. */
  workDir: string;
  /** Default: the spec's task; else read from the predictions (`label` → classification, `value` → regression). */
  task?: 'classification' | 'regression';
  /** The known class labels (the model artifact's or the contract's); a probability column or label outside them is refused. */
  classes?: readonly string[];
  /** Default: the spec's timeLimitSeconds. */
  timeLimitSeconds?: number;
  /** Environment the command starts from (default: PATH, HOME, locale, TMPDIR, TZ, USER of this process). */
  baseEnv?: Record<string, string>;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  killGraceMs?: number;
  /** Largest predictions file read (default 1 GiB). */
  maxPredictionBytes?: number;
}

export const DEFAULT_MAX_PREDICTION_BYTES = 1024 * 1024 * 1024;

export async function runScoreCommand(options: ScoreCommandOptions): Promise<Scores> {
  const { spec, workDir } = options;
  if (!spec.score)
    throw new NonRetriableError(
      'score_command_required',
      'the model has no ONNX flavor (python_function only), so the pipeline must name a `score` command to evaluate it',
    );
  const code = await stat(spec.code).catch(() => undefined);
  if (!code?.isDirectory())
    throw new NonRetriableError(
      'code_folder_missing',
      `the code folder ${spec.code} ${code ? 'is not a folder' : 'does not exist'}`,
    );
  const model = await stat(options.modelDir).catch(() => undefined);
  if (!model?.isDirectory())
    throw new NonRetriableError(
      'model_folder_missing',
      `the model folder ${options.modelDir} does not exist`,
    );

  await mkdir(workDir, { recursive: true });
  const { file: inputFile, rows } = await writeInput(options, join(workDir, 'input.csv'));
  const predictionsFile = join(workDir, 'predictions.csv');
  await rm(predictionsFile, { force: true });
  const logFile = join(workDir, 'score.log');

  const variables: Record<string, string> = {
    SLUICE_MODEL: options.modelDir,
    SLUICE_INPUT: inputFile,
    SLUICE_PREDICTIONS: predictionsFile,
    SLUICE_FEATURES: JSON.stringify(spec.features),
    SLUICE_TARGET: spec.target,
    SLUICE_HYPERPARAMETERS: JSON.stringify(spec.hyperparameters),
  };
  const task = options.task ?? spec.task;
  if (task) variables.SLUICE_TASK = task;
  const argv = commandArgv(spec.score, variables, SCORE_COMMAND_VARIABLE_NAMES);
  const env = { ...(options.baseEnv ?? defaultBaseEnv()), PYTHONUNBUFFERED: '1', ...variables };
  const limit = options.timeLimitSeconds ?? spec.timeLimitSeconds;

  const ended = await runJobProcess({
    argv,
    cwd: spec.code,
    env,
    logFile,
    timeLimitMs: limit * 1000,
    onLine: options.onLine,
    signal: options.signal,
    killGraceMs: options.killGraceMs,
  });
  const tail = ended.logTail;
  if (ended.stoppedBy === 'time_limit')
    throw new UserJobError(
      'score_time_limit_exceeded',
      `the score command ran past its time limit of ${limit} s and was stopped`,
      tail,
    );
  if (ended.stoppedBy === 'canceled') throw new UserJobError('canceled', 'scoring was canceled', tail);
  if (ended.exitCode !== 0)
    throw new UserJobError(
      'score_failed',
      ended.signal
        ? `the score command ${argv[0]} was killed by ${ended.signal}`
        : `the score command ${argv[0]} exited with code ${ended.exitCode}`,
      tail,
    );
  const info = await stat(predictionsFile).catch(() => undefined);
  if (!info?.isFile())
    throw new UserJobError(
      'predictions_missing',
      'the score command exited 0 but wrote nothing to SLUICE_PREDICTIONS',
      tail,
    );
  const max = options.maxPredictionBytes ?? DEFAULT_MAX_PREDICTION_BYTES;
  if (info.size > max)
    throw new NonRetriableError(
      'predictions_invalid',
      `SLUICE_PREDICTIONS is ${info.size} bytes, over the limit of ${max}`,
    );
  return checkedPredictions(await readFile(predictionsFile, 'utf8'), rows, task, options.classes);
}

/**
 * A predictions file's scores, with every check a score command's output gets (the format, one
 * prediction per input row, finite values, probabilities, known labels): the same on every backend.
 */
export function checkedPredictions(
  text: string,
  rows: number,
  task: 'classification' | 'regression' | undefined,
  classes: readonly string[] | undefined,
): Scores {
  const scores = parsePredictions(text, task, classes);
  const n = scores.values?.length ?? scores.labels?.length ?? 0;
  if (n !== rows)
    throw new NonRetriableError(
      'predictions_invalid',
      `SLUICE_PREDICTIONS holds ${n} prediction${n === 1 ? '' : 's'} for ${rows} input row${rows === 1 ? '' : 's'}`,
    );
  checkPredictions(scores, classes);
  return scores;
}

/** SLUICE_INPUT: the feature columns of the rows, in the spec's order; returns its row count. */
export async function writeScoreInput(
  options: Pick<ScoreCommandOptions, 'rows' | 'spec'>,
  file: string,
): Promise<{ file: string; rows: number }> {
  return writeInput(options, file);
}

async function writeInput(
  options: Pick<ScoreCommandOptions, 'rows' | 'spec'>,
  file: string,
): Promise<{ file: string; rows: number }> {
  const { rows } = options;
  const features = options.spec.features;
  if (typeof rows === 'string') {
    const text = await readFile(rows, 'utf8').catch((err: unknown) => {
      throw new NonRetriableError('score_input_missing', `cannot read the rows to score, ${rows}`, {
        cause: err,
      });
    });
    return { file: rows, rows: Math.max(0, csvRecords(text) - 1) };
  }
  if (isTable(rows)) {
    const byName = new Map(rows.columns.map((c) => [c.name, c]));
    const missing = features.filter((f) => !byName.has(f));
    if (missing.length)
      throw new NonRetriableError(
        'missing_column',
        `the rows to score have no column ${missing.map((m) => `"${m}"`).join(', ')}`,
      );
    await writeTableCsv(file, { rows: rows.rows, columns: features.map((f) => byName.get(f)!) });
    return { file, rows: rows.rows };
  }
  const lines = [features.map((f) => formatCsvField(f, { raw: true })).join(',')];
  rows.forEach((row, i) => {
    lines.push(
      features
        .map((f) => {
          if (!Object.hasOwn(row, f))
            throw new NonRetriableError('row_invalid', `row ${i} has no value for feature "${f}"`);
          const v = row[f];
          if (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v))) return '';
          return formatCsvField(typeof v === 'string' ? v : JSON.stringify(v), { raw: true });
        })
        .join(','),
    );
  });
  await writeFile(file, `${lines.join('\n')}\n`);
  return { file, rows: rows.length };
}

const isTable = (rows: ScoreCommandOptions['rows']): rows is Table =>
  typeof rows === 'object' && !Array.isArray(rows) && 'columns' in rows;

/** Records of an RFC 4180 text (quoted line breaks inside a field do not end a record; blank lines do not count). */
function csvRecords(text: string): number {
  let records = 0;
  let quoted = false;
  let content = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      quoted = !quoted;
      content = true;
    } else if (c === 0x0a && !quoted) {
      if (content) records++;
      content = false;
    } else if (c !== 0x0d) content = true;
  }
  return records + (content ? 1 : 0);
}

/** RFC 4180 fields (LF or CRLF line ends; blank lines skipped). */
export function parseCsvText(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let any = false;
  const endField = () => {
    record.push(field);
    field = '';
  };
  const endRecord = () => {
    endField();
    if (any) records.push(record);
    record = [];
    any = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') {
      quoted = true;
      any = true;
    } else if (c === ',') {
      endField();
      any = true;
    } else if (c === '\n') endRecord();
    else if (c === '\r' && text[i + 1] === '\n') continue;
    else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw new NonRetriableError('predictions_invalid', 'SLUICE_PREDICTIONS has an unclosed quote');
  if (any || field !== '') endRecord();
  return records;
}

const bad = (message: string) =>
  new NonRetriableError('predictions_invalid', `SLUICE_PREDICTIONS: ${message}`);

function number(text: string, where: string): number {
  const v = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(v)) throw bad(`${where} is ${JSON.stringify(text)}, not a finite number`);
  return v;
}

/**
 * The predictions file: CSV (`label` plus one column per class named by the class, or `value`) or
 * JSON Lines (`{"label": …, "probabilities": {class: p, …}}` or `{"value": …}`), told apart by the
 * first character (`{` = JSON Lines).
 */
export function parsePredictions(
  text: string,
  task: 'classification' | 'regression' | undefined,
  classes?: readonly string[],
): Scores {
  const body = text.replace(/^\uFEFF/, '');
  return body.trimStart().startsWith('{')
    ? parseJsonLines(body, task, classes)
    : parseCsvPredictions(body, task, classes);
}

function taskOf(
  columns: readonly string[],
  task: 'classification' | 'regression' | undefined,
): 'classification' | 'regression' {
  const found = columns.includes('label')
    ? 'classification'
    : columns.includes('value')
      ? 'regression'
      : undefined;
  if (!found)
    throw bad(
      `expected a "label" column (classification) or a "value" column (regression), found ${columns.map((c) => JSON.stringify(c)).join(', ') || 'nothing'}`,
    );
  if (task && found !== task)
    throw bad(`the task is ${task}, so expected ${task === 'classification' ? '"label"' : '"value"'}`);
  return found;
}

function checkClassColumns(columns: readonly string[], classes?: readonly string[]): void {
  if (columns.length === 0)
    throw bad('a classifier must give one probability column per class besides "label"');
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw bad(`the class ${JSON.stringify(c)} has two probability columns`);
    seen.add(c);
  }
  if (classes) {
    const known = new Set(classes);
    const unknown = columns.filter((c) => !known.has(c));
    if (unknown.length)
      throw bad(
        `probability columns ${unknown.map((c) => JSON.stringify(c)).join(', ')} are not classes of the target (classes: ${classes.join(', ')})`,
      );
  }
}

function parseCsvPredictions(
  text: string,
  task: 'classification' | 'regression' | undefined,
  classes?: readonly string[],
): Scores {
  const records = parseCsvText(text);
  if (records.length === 0) throw bad('the file is empty (a header line is expected first)');
  const header = records[0]!.map((h) => h.trim());
  const kind = taskOf(header, task);
  const rows = records.slice(1);
  rows.forEach((r, i) => {
    if (r.length !== header.length)
      throw bad(`line ${i + 2} has ${r.length} fields, the header ${header.length}`);
  });
  if (kind === 'regression') {
    const at = header.indexOf('value');
    return { values: rows.map((r, i) => number(r[at]!, `the value of row ${i}`)) };
  }
  const at = header.indexOf('label');
  const classColumns = header.map((h, j) => ({ h, j })).filter(({ j }) => j !== at);
  checkClassColumns(
    classColumns.map((c) => c.h),
    classes,
  );
  return {
    labels: rows.map((r) => r[at]!),
    probabilities: rows.map((r, i) =>
      classColumns.map(({ h, j }) => number(r[j]!, `the probability of ${JSON.stringify(h)} in row ${i}`)),
    ),
    classes: classColumns.map((c) => c.h),
  };
}

function parseJsonLines(
  text: string,
  task: 'classification' | 'regression' | undefined,
  classes?: readonly string[],
): Scores {
  const objects = text
    .split(/\r?\n/)
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, i }) => {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        throw bad(`line ${i + 1} is not JSON`);
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw bad(`line ${i + 1} is not a JSON object`);
      return v as Record<string, unknown>;
    });
  if (objects.length === 0) return task === 'regression' ? { values: [] } : { labels: [], probabilities: [] };
  const kind = taskOf(Object.keys(objects[0]!), task);
  if (kind === 'regression') {
    return {
      values: objects.map((o, i) => {
        if (typeof o.value !== 'number' || !Number.isFinite(o.value))
          throw bad(`the value of row ${i} is ${JSON.stringify(o.value)}, not a finite number`);
        return o.value;
      }),
    };
  }
  const first = objects[0]!.probabilities;
  if (typeof first !== 'object' || first === null || Array.isArray(first))
    throw bad('row 0 has no "probabilities" object (class → probability)');
  const classColumns = Object.keys(first);
  checkClassColumns(classColumns, classes);
  const labels: string[] = [];
  const probabilities: number[][] = [];
  objects.forEach((o, i) => {
    if (typeof o.label !== 'string' && typeof o.label !== 'number' && typeof o.label !== 'boolean')
      throw bad(`the label of row ${i} is ${JSON.stringify(o.label)}`);
    labels.push(String(o.label));
    const p = o.probabilities;
    if (typeof p !== 'object' || p === null || Array.isArray(p))
      throw bad(`row ${i} has no "probabilities" object`);
    const got = p as Record<string, unknown>;
    const keys = Object.keys(got);
    if (keys.length !== classColumns.length || keys.some((k) => !Object.hasOwn(first, k)))
      throw bad(`row ${i} gives probabilities for ${keys.join(', ')}, row 0 for ${classColumns.join(', ')}`);
    probabilities.push(
      classColumns.map((c) => {
        const v = got[c];
        if (typeof v !== 'number' || !Number.isFinite(v))
          throw bad(
            `the probability of ${JSON.stringify(c)} in row ${i} is ${JSON.stringify(v)}, not a finite number`,
          );
        return v;
      }),
    );
  });
  return { labels, probabilities, classes: classColumns };
}
