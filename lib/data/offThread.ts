import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { decodeColumnar } from './columnar';
import type { DatasetContract } from './contract';
import type { DatasetInfo } from './report';
import type { ReferenceProfileKey } from './referenceProfile';
import { decodeReferenceProfile, encodeReferenceProfile } from './referenceProfile';
import type { ValidateInput, ValidateResult } from './validate';
import { validateTable } from './validate';

/**
 * Validation of a large dataset is seconds of CPU. On the Functions worker's event loop that would
 * stall every other function of the process (orchestrator episodes, the approval page, status
 * queries), so the compiled app validates on one long-lived worker thread: the columnar bytes are
 * transferred (not copied), the report comes back. Run from TypeScript sources (tests), it runs
 * inline.
 */

export interface OffThreadValidation {
  current: Uint8Array;
  /** The reference's columnar bytes, or (with `referenceKey`) its stored reference profile. */
  reference?: Uint8Array;
  referenceProfile?: Uint8Array;
  /** Which data and contract the reference profile is (or is to be) built from. */
  referenceKey?: ReferenceProfileKey;
  contract: DatasetContract;
  dataset: DatasetInfo;
  referenceInfo?: DatasetInfo;
  noReferenceReason?: string;
}

const MARK = 'sluice-validation-worker';

export interface OffThreadResult extends Omit<ValidateResult, 'referenceProfile'> {
  /** The encoded reference profile, when it was built from the reference's rows and a key was given. */
  referenceProfile?: Uint8Array;
}

/**
 * The report's reference info in one key order whatever it was merged from (reports are stored by
 * their digest: the same facts must give the same bytes, from the rows or from a stored profile).
 */
function referenceInfo(
  table: { rows: number; columns: unknown[] },
  ...from: (Partial<DatasetInfo> | undefined)[]
): DatasetInfo {
  const merged: Partial<DatasetInfo> = Object.assign({}, ...from);
  const info: DatasetInfo = { rows: table.rows, columns: table.columns.length };
  if (merged.sha256 !== undefined) info.sha256 = merged.sha256;
  if (merged.bytes !== undefined) info.bytes = merged.bytes;
  if (merged.format !== undefined) info.format = merged.format;
  return info;
}

function run(input: OffThreadValidation): OffThreadResult {
  const table = decodeColumnar(input.current);
  const job: ValidateInput = {
    table,
    contract: input.contract,
    dataset: { ...input.dataset, rows: table.rows, columns: table.columns.length },
    ...(input.noReferenceReason ? { noReferenceReason: input.noReferenceReason } : {}),
  };
  if (input.referenceProfile && input.referenceKey) {
    const profile = decodeReferenceProfile(input.referenceProfile, input.referenceKey);
    job.reference = {
      profile,
      info: referenceInfo(profile.table, profile.info, input.referenceInfo),
    };
  } else if (input.reference) {
    const ref = decodeColumnar(input.reference);
    job.reference = { table: ref, info: referenceInfo(ref, input.referenceInfo) };
  }
  // Only `job` holds the reference's bytes now; validation swaps them for a skeleton once profiled.
  input.reference = undefined;
  const { referenceProfile, ...result } = validateTable(job);
  if (!referenceProfile || !input.referenceKey) return result;
  // Stored with what the report says of the reference, so a later run from the profile says the same.
  const { rows: _rows, columns: _columns, ...info } = result.report.reference ?? { rows: 0, columns: 0 };
  return {
    ...result,
    referenceProfile: encodeReferenceProfile({ ...referenceProfile, info }, input.referenceKey),
  };
}

/** Bytes as a standalone ArrayBuffer that can be transferred (a view into a larger one is copied). */
function transferable(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
    ? bytes
    : new Uint8Array(bytes);
}

type Reply = {
  id: number;
  result?: OffThreadResult;
  error?: { message: string; code?: string; name?: string };
};
type Pending = { resolve: (r: OffThreadResult) => void; reject: (e: unknown) => void };

let worker: Worker | undefined;
const pending = new Map<number, Pending>();
let nextId = 1;

const compiled = (): boolean => __filename.endsWith('.js');

function failAll(err: unknown): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  worker = undefined;
}

/** How long an idle worker lives: back-to-back validations share it, the memory of the last one is freed soon after. */
export const WORKER_IDLE_MS = 2_000;
let idleTimer: NodeJS.Timeout | undefined;

/** How long a worker started ahead of need waits for its job (downloads can take a while). */
export const WORKER_WARM_MS = 60_000;

function idle(w: Worker, ms = WORKER_IDLE_MS): void {
  w.unref(); // idle: do not keep the process alive
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (worker === w && pending.size === 0) {
      worker = undefined;
      void w.terminate();
    }
  }, ms);
  idleTimer.unref();
}

/** The process's validation worker, started on first use; it does not keep the process alive. */
function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(__filename, { workerData: { [MARK]: true } });
  w.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) idle(w);
    if (m.result) p.resolve(m.result);
    else
      p.reject(
        Object.assign(new Error(m.error?.message ?? 'validation failed'), {
          code: m.error?.code,
          name: m.error?.name ?? 'Error',
        }),
      );
  });
  w.on('error', (err) => {
    if (worker === w) failAll(err);
  });
  w.on('exit', (code) => {
    if (worker === w) failAll(new Error(`the validation worker exited with code ${code}`));
  });
  // Idle until a job arrives (after the listeners: attaching one refs the port again).
  w.unref();
  worker = w;
  return w;
}

/** Starts the worker ahead of need, so its start-up overlaps the downloads that come first. */
export function warmValidationWorker(graceMs = WORKER_WARM_MS): void {
  if (!compiled()) return;
  const w = getWorker();
  // A warm-up whose job never comes (the download or the upload failed) must not keep a thread forever.
  if (pending.size === 0) idle(w, graceMs);
}

/** The validation worker's thread id while one is running (for health checks and tests). */
export function validationWorkerThreadId(): number | undefined {
  return worker?.threadId;
}

/** Validates columnar bytes on the worker thread when running compiled, inline otherwise. */
export function validateColumnarOffThread(
  input: OffThreadValidation,
  options: { inline?: boolean } = {},
): Promise<OffThreadResult> {
  if (options.inline || !compiled()) return Promise.resolve().then(() => run(input));
  const current = transferable(input.current);
  const reference = input.reference ? transferable(input.reference) : undefined;
  const transferList = [
    current.buffer as ArrayBuffer,
    ...(reference ? [reference.buffer as ArrayBuffer] : []),
  ];
  // The profile is small: copied, so the caller's bytes stay usable.
  const w = getWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    clearTimeout(idleTimer);
    w.ref(); // a job in flight keeps the process alive until its answer
    w.postMessage({ id, input: { ...input, current, reference } }, transferList);
  });
}

if (!isMainThread && parentPort && (workerData as Record<string, unknown> | null)?.[MARK]) {
  const port = parentPort;
  port.on('message', (m: { id: number; input: OffThreadValidation }) => {
    try {
      const result = run(m.input);
      const transfer = result.referenceProfile ? [result.referenceProfile.buffer as ArrayBuffer] : [];
      port.postMessage({ id: m.id, result } satisfies Reply, transfer);
    } catch (err) {
      const e = err as Error & { code?: string };
      port.postMessage({
        id: m.id,
        error: { message: e.message, ...(e.code ? { code: e.code } : {}), name: e.name },
      } satisfies Reply);
    }
  });
}
