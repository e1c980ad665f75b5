import { fork } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { decodeColumnar, encodeColumnar } from '../../lib/data/reading/columnar';
import { conformTable } from '../../lib/data/checking/conform';
import { parseDatasetContract } from '../../lib/contracts/datasetContract';
import { readDataset } from '../../lib/data/reading/readDataset';
import {
  sharedBytes,
  validateColumnarOffThread,
  warmValidationWorker,
} from '../../lib/data/checking/offThread';
import type { ReferenceProfileKey } from '../../lib/data/profiling/referenceProfile';
import {
  buildReferenceProfile,
  decodeReferenceProfile,
  encodeReferenceProfile,
} from '../../lib/data/profiling/referenceProfile';
import { datasetContractDigest } from '../../lib/data/checking/report';
import { writeGeneratedCsv } from './generate';

/**
 * bench:data — ingest + validate + drift of a generated 50 MB CSV (750,000 rows × 12 columns)
 * against the fastest available parse of the same file, each stage in its own process so peak RSS
 * is its own. Blob I/O is left out (Azurite speed is not the subject); everything else an
 * activity does is in: streaming read, SHA-256, encoding and UTF-8 checks, typed columns, columnar
 * encode + write (hashed for its content address) + read back (digest verified), the stored
 * profile's digest check, contract and quality checks, profile, drift against a 750k-row
 * reference (through the profile an earlier run stored; the first run against a new reference,
 * which reads its rows and builds that profile, is timed on its own line), schema diff.
 *
 *   npm run bench:data [-- --rows 750000 --runs 3]
 */

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
};
const ROWS = Number(arg('rows', '750000'));
const RUNS = Number(arg('runs', '3'));
const DIR = arg('dir', path.join(tmpdir(), 'sluice-bench-data'));
const CURRENT = path.join(DIR, `current-${ROWS}.csv`);
const REFERENCE = path.join(DIR, `reference-${ROWS}.csv`);
const REFERENCE_COLUMNAR = path.join(DIR, `reference-${ROWS}.columnar`);
// Each round's ingest writes its own file, all removed after the last round: deleting or
// truncating 66 MB on this disk (ext4 with online discard) cost tens of ms in whatever ran next.
const ROUND = arg('round', '0');
const roundFile = (round: number | string): string =>
  path.join(DIR, `current-${ROWS}.round-${round}.columnar`);
const CURRENT_COLUMNAR = roundFile(ROUND);
const REFERENCE_PROFILE = path.join(DIR, `reference-${ROWS}.profile`);

export const benchContract = parseDatasetContract({
  columns: [
    { name: 'id', type: 'integer', unique: true, min: 1 },
    { name: 'age', type: 'integer', min: 18, max: 90 },
    { name: 'income', type: 'number', min: 0 },
    { name: 'score', type: 'number' },
    { name: 'tenure', type: 'integer', min: 0 },
    { name: 'balance', type: 'number' },
    { name: 'rate', type: 'number', min: 0, max: 1 },
    { name: 'visits', type: 'integer', min: 0 },
    { name: 'height', type: 'number', min: 100, max: 250 },
    {
      name: 'region',
      type: 'category',
      values: ['north', 'south', 'east', 'west', 'central', 'coast', 'hills', 'metro'],
    },
    { name: 'plan', type: 'category', values: ['basic', 'plus', 'pro', 'team'] },
    { name: 'label', type: 'integer', values: [0, 1] },
  ],
  target: 'label',
  task: 'binary',
  quality: {
    minRows: 1000,
    maxNullFraction: 0.01,
    maxDuplicateRowFraction: 0.01,
    classBalance: { minClassFraction: 0.1 },
  },
});

interface StageResult {
  stage: string;
  ms: number;
  maxRssMb: number;
  detail?: Record<string, number | string>;
}

async function stageUdsv(): Promise<StageResult> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { initParser, inferSchema } = require('udsv') as {
    initParser: (schema: unknown) => {
      chunk(s: string, f: unknown, cb: (rows: unknown[]) => void): void;
      end(): void;
      stringArrs: unknown;
      typedArrs: unknown;
    };
    inferSchema: (s: string) => unknown;
  };
  const t = performance.now();
  let parser: ReturnType<typeof initParser> | undefined;
  let rows = 0;
  for await (const chunk of createReadStream(CURRENT, { highWaterMark: 1 << 20 })) {
    const text = (chunk as Buffer).toString();
    parser ??= initParser(inferSchema(text));
    parser.chunk(text, parser.typedArrs, (batch) => {
      rows += batch.length;
    });
  }
  parser?.end();
  return { stage: 'udsv', ms: performance.now() - t, maxRssMb: 0, detail: { batches: rows } };
}

async function stageParse(): Promise<StageResult> {
  const t = performance.now();
  const r = await readDataset(createReadStream(CURRENT, { highWaterMark: 1 << 20 }), {
    contract: benchContract,
    expectedBytes: statSync(CURRENT).size,
  });
  return { stage: 'sluice-parse', ms: performance.now() - t, maxRssMb: 0, detail: { rows: r.table.rows } };
}

/** The ingest activity's work: stream → checks → typed columns (+ SHA-256) → columnar form written out. */
async function ingestStage(): Promise<{ sha256: string; parseMs: number }> {
  const t0 = performance.now();
  const parsed = await readDataset(createReadStream(CURRENT, { highWaterMark: 1 << 20 }), {
    contract: benchContract,
    expectedBytes: statSync(CURRENT).size,
  });
  const parseMs = performance.now() - t0;
  // Written part by part and hashed on the way, as the activity streams it to its content address.
  const hash = createHash('sha256');
  const fd = openSync(CURRENT_COLUMNAR, 'w');
  for (const part of encodeColumnar(parsed.table, { sourceSha256: parsed.input.sha256 })) {
    hash.update(part);
    writeSync(fd, part);
  }
  closeSync(fd);
  writeFileSync(`${CURRENT_COLUMNAR}.sha256`, hash.digest('hex'));
  return { sha256: parsed.input.sha256, parseMs };
}

/** The ingest activity, in its own process. */
async function stageIngest(): Promise<StageResult> {
  const t0 = performance.now();
  const { parseMs } = await ingestStage();
  const t1 = performance.now();
  return {
    stage: 'ingest',
    ms: t1 - t0,
    maxRssMb: 0,
    detail: { parse: parseMs, columnarWrite: t1 - t0 - parseMs },
  };
}

/**
 * Which data and contract the stored reference profile belongs to. The activity has the columnar
 * digest in its input; here it is computed once and kept next to the file.
 */
function referenceKey(): ReferenceProfileKey {
  const digestFile = `${REFERENCE_COLUMNAR}.sha256`;
  if (!existsSync(digestFile)) {
    const digest = createHash('sha256').update(readFileSync(REFERENCE_COLUMNAR)).digest('hex');
    writeFileSync(digestFile, digest);
  }
  return {
    dataSha256: readFileSync(digestFile, 'utf8'),
    contractSha256: datasetContractDigest(benchContract),
  };
}

/**
 * A file read into shared memory and checked against its digest, as the activity downloads the
 * columnar form (hashed as it arrives, no copy after) and the stored profile.
 */
function readShared(file: string, sha256: string): Uint8Array {
  const out = sharedBytes(statSync(file).size);
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (let at = 0; at < out.byteLength;) {
      const n = readSync(fd, out, at, Math.min(1 << 22, out.byteLength - at), at);
      if (n === 0) throw new Error(`${file} ended early`);
      hash.update(out.subarray(at, at + n));
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  if (hash.digest('hex') !== sha256) throw new Error(`${file} does not match its digest`);
  return out;
}

/**
 * One validation as the activity runs it: the workers start while the data is read; the bytes are
 * shared with them (a large table) or transferred. `first`: the first run against this reference reads its rows and builds its profile;
 * later runs read the stored profile instead.
 */
async function validateOnce(first = false): Promise<{
  ms: number;
  readMs: number;
  result: Awaited<ReturnType<typeof validateColumnarOffThread>>;
}> {
  const t0 = performance.now();
  warmValidationWorker({ bytes: statSync(CURRENT_COLUMNAR).size });
  const key = referenceKey();
  const current = readShared(CURRENT_COLUMNAR, readFileSync(`${CURRENT_COLUMNAR}.sha256`, 'utf8'));
  const reference = first
    ? { reference: readFileSync(REFERENCE_COLUMNAR) }
    : {
        referenceProfile: readShared(REFERENCE_PROFILE, readFileSync(`${REFERENCE_PROFILE}.sha256`, 'utf8')),
      };
  const t1 = performance.now();
  const result = await validateColumnarOffThread({
    current,
    ...reference,
    referenceKey: key,
    contract: benchContract,
    dataset: { rows: 0, columns: 0 },
  });
  return { ms: performance.now() - t0, readMs: t1 - t0, result };
}

/**
 * The validate activity, in its own process. The first run includes starting the worker thread;
 * the second is the steady state of a long-lived Functions worker (reported in the details).
 */
async function stageValidate(): Promise<StageResult> {
  const cold = await validateOnce();
  const coldRss = process.resourceUsage().maxRSS / 1024; // one validation: what the activity costs
  const warm = await validateOnce();
  const { report, timings } = warm.result;
  return {
    stage: 'validate',
    ms: cold.ms,
    maxRssMb: coldRss,
    detail: {
      warm: warm.ms,
      columnarRead: warm.readMs,
      conform: timings.conform,
      profile: timings.profile,
      checks: timings.checks,
      drift: timings.drift,
      schemaDiff: timings.schemaDiff,
      helperWait: timings.helperWait,
      status: report.summary.status,
      drifted: report.summary.driftedColumns.join(' ') || '-',
    },
  };
}

/** The first validation against a new reference, in its own process: its rows are read and profiled. */
async function stageValidateFirst(): Promise<StageResult> {
  const run = await validateOnce(true);
  return {
    stage: 'validate-first',
    ms: run.ms,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    detail: { referenceProfileBytes: run.result.referenceProfile?.byteLength ?? 0 },
  };
}

const stages: Record<string, () => Promise<StageResult>> = {
  udsv: stageUdsv,
  parse: stageParse,
  ingest: stageIngest,
  validate: stageValidate,
  'validate-first': stageValidateFirst,
};

/** Runs one stage in a fresh process and returns its result with that process's peak RSS. */
function inChild(stage: string, round: number): Promise<StageResult> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--stage', stage, '--round', String(round), ...process.argv.slice(2)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (m) => resolve(m as StageResult));
    child.once('error', reject);
    child.once('exit', (code) => (code ? reject(new Error(`${stage} exited ${code}`)) : undefined));
  });
}

/** Whether a stored profile reads with this build (the format may have changed since it was written). */
function readsAsProfile(file: string): boolean {
  try {
    decodeReferenceProfile(readFileSync(file), referenceKey());
    return true;
  } catch {
    return false;
  }
}

async function prepare(): Promise<void> {
  mkdirSync(DIR, { recursive: true });
  if (!existsSync(CURRENT)) await writeGeneratedCsv(CURRENT, { rows: ROWS, seed: 2, shift: 0.15 });
  if (!existsSync(REFERENCE)) await writeGeneratedCsv(REFERENCE, { rows: ROWS, seed: 1, shift: 0 });
  if (!existsSync(REFERENCE_COLUMNAR)) {
    // The reference was ingested by an earlier run: its columnar form is what validation reads.
    const ref = await readDataset(createReadStream(REFERENCE), { contract: benchContract });
    writeFileSync(REFERENCE_COLUMNAR, Buffer.concat(encodeColumnar(ref.table)));
    rmSync(`${REFERENCE_COLUMNAR}.sha256`, { force: true });
  }
  if (!existsSync(REFERENCE_PROFILE) || !readsAsProfile(REFERENCE_PROFILE)) {
    // The earlier run's validation stored the reference's profile next to it.
    const table = conformTable(decodeColumnar(readFileSync(REFERENCE_COLUMNAR)), benchContract);
    writeFileSync(REFERENCE_PROFILE, encodeReferenceProfile(buildReferenceProfile(table), referenceKey()));
  }
  // The digest recorded with the stored profile, which a validation checks after reading it.
  const profileDigest = createHash('sha256').update(readFileSync(REFERENCE_PROFILE)).digest('hex');
  writeFileSync(`${REFERENCE_PROFILE}.sha256`, profileDigest);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const stage = arg('stage', '');
  if (stage) {
    const result = await stages[stage]!();
    result.maxRssMb ||= process.resourceUsage().maxRSS / 1024;
    process.send!(result);
    return;
  }
  await prepare();
  const mb = statSync(CURRENT).size / 1e6;
  console.log(
    `bench:data — ${mb.toFixed(1)} MB, ${ROWS.toLocaleString('en')} rows × 12 columns, ${RUNS} runs per stage (median), node ${process.version}`,
  );
  const results: Record<string, StageResult[]> = {
    udsv: [],
    parse: [],
    ingest: [],
    validate: [],
    'validate-first': [],
  };
  for (let i = 0; i < RUNS; i++) for (const s of Object.keys(results)) results[s]!.push(await inChild(s, i));
  for (let i = 0; i < RUNS; i++)
    for (const f of [roundFile(i), `${roundFile(i)}.sha256`]) rmSync(f, { force: true });
  const line = (label: string, ms: number, rss: number): void =>
    console.log(
      `${label.padEnd(46)} ${ms.toFixed(0).padStart(6)} ms  ${(mb / (ms / 1000)).toFixed(1).padStart(6)} MB/s  peak RSS ${rss.toFixed(0).padStart(4)} MB`,
    );
  const row = (label: string, rs: StageResult[]): { ms: number; rss: number } => {
    const ms = median(rs.map((r) => r.ms));
    const rss = Math.max(...rs.map((r) => r.maxRssMb));
    line(label, ms, rss);
    return { ms, rss };
  };
  const udsv = row('floor: udsv 0.7.3 streaming parse (typed)', results.udsv!);
  const parse = row('sluice parse only (checks + typed columns)', results.parse!);
  const ingest = row('sluice ingest activity (parse + columnar write)', results.ingest!);
  const validate = row('sluice validate activity (checks + drift)', results.validate!);
  const first = row('  the first one against a new reference', results['validate-first']!);
  const totals = results.ingest!.map((r, i) => r.ms + results.validate![i]!.ms);
  const total = median(totals);
  const rss = Math.max(ingest.rss, validate.rss, first.rss);
  line('sluice ingest + validate + drift', total, rss);
  for (const s of ['ingest', 'validate']) {
    const last = results[s]!.at(-1)!;
    const parts = Object.entries(last.detail ?? {}).map(
      ([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(0) : v}`,
    );
    console.log(`  ${s} stages of the last run (ms): ${parts.join(', ')}`);
  }
  const warm = median(
    results.validate!.map((r, i) => results.ingest![i]!.ms + Number(r.detail?.warm ?? NaN)),
  );
  const fastest = Math.min(udsv.ms, parse.ms);
  // Each round ran every stage back to back, so its own ratio compares like with like on a machine
  // whose speed drifts between rounds; the median of those ratios is the figure to judge.
  const paired = results.ingest!.map((r, i) => {
    const floor = Math.min(results.udsv![i]!.ms, results.parse![i]!.ms);
    return (r.ms + results.validate![i]!.ms) / floor;
  });
  const pairedWarm = results.ingest!.map((r, i) => {
    const floor = Math.min(results.udsv![i]!.ms, results.parse![i]!.ms);
    return (r.ms + Number(results.validate![i]!.detail?.warm ?? NaN)) / floor;
  });
  const spread = (xs: number[]): string =>
    `${median(xs).toFixed(2)}× (rounds ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}×)`;
  console.log(
    `ratio to udsv: ${(total / udsv.ms).toFixed(2)}×; to the fastest parse measured (${fastest.toFixed(0)} ms): ${(total / fastest).toFixed(2)}×; peak RSS ${rss.toFixed(0)} MB (goal < 300 MB; the two activities run one after the other)`,
  );
  console.log(
    `per round, ingest + validate + drift / the fastest parse of the same round: ${spread(paired)} (goal ≤ 2×: ${median(paired) <= 2 ? 'met' : 'NOT met'})`,
  );
  console.log(
    `with the validation worker already running (a long-lived Functions worker): ${warm.toFixed(0)} ms, ${(warm / udsv.ms).toFixed(2)}× udsv, per round ${spread(pairedWarm)} the fastest parse`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
