import { availableParallelism } from 'node:os';
import type { MessagePort, TransferListItem } from 'node:worker_threads';
import {
  isMainThread,
  MessageChannel,
  parentPort,
  receiveMessageOnPort,
  Worker,
  workerData,
} from 'node:worker_threads';
import { decodeColumnar, readColumnarHeader } from '../reading/columnar';
import type { DatasetContract } from '../../contracts/datasetContract';
import type { DatasetInfo } from './report';
import type { ReferenceProfile, ReferenceProfileKey } from '../profiling/referenceProfile';
import { decodeReferenceProfile, encodeReferenceProfile } from '../profiling/referenceProfile';
import type { ColumnOutcome, ColumnShare, ValidateInput, ValidateResult } from './validateTable';
import { validateClaimedColumns, validateTable } from './validateTable';

/**
 * Validation of a large dataset is seconds of CPU. On the Functions worker's event loop that would
 * stall every other function of the process (orchestrator episodes, the approval page, status
 * queries), so the compiled app validates on a worker thread: the columnar bytes are transferred
 * (not copied), the report comes back. A large table is shared (SharedArrayBuffer) with a second,
 * helper thread as well, when the machine has a second core: both claim columns from a shared
 * counter (profile, checks and drift are per column), then the first does the table-level rules.
 * Run from TypeScript sources (tests), it runs inline.
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

/** A job's column share with the helper thread: a claim counter and a signal word, shared memory. */
interface ShareChannel {
  /** [0]: the next column to claim; [1]: set to 1 when the helper's outcomes were posted. */
  words: Int32Array;
  port: MessagePort;
}

type HelperReply = { outcomes: [number, ColumnOutcome][] } | { error: ErrorInfo };
type ErrorInfo = { message: string; code?: string; name?: string };

const errorInfo = (err: unknown): ErrorInfo => {
  const e = err as Error & { code?: string };
  return { message: e.message, ...(e.code ? { code: e.code } : {}), name: e.name };
};
const fromInfo = (info: ErrorInfo | undefined): Error =>
  Object.assign(new Error(info?.message ?? 'validation failed'), {
    code: info?.code,
    name: info?.name ?? 'Error',
  });

function columnShare(channel: ShareChannel): ColumnShare {
  const { words, port } = channel;
  return {
    claim: () => Atomics.add(words, 0, 1),
    take() {
      // This thread has nothing else to do until the helper's columns are done: block, do not spin.
      for (;;) {
        const m = receiveMessageOnPort(port);
        if (m) {
          port.close();
          const reply = m.message as HelperReply;
          if ('error' in reply) throw fromInfo(reply.error);
          return reply.outcomes;
        }
        Atomics.wait(words, 1, 0, 1_000);
      }
    },
  };
}

function referenceOf(input: OffThreadValidation): ReferenceProfile | undefined {
  return input.referenceProfile && input.referenceKey
    ? decodeReferenceProfile(input.referenceProfile, input.referenceKey)
    : undefined;
}

function run(input: OffThreadValidation, channel?: ShareChannel): OffThreadResult {
  const table = decodeColumnar(input.current);
  const job: ValidateInput = {
    table,
    contract: input.contract,
    dataset: { ...input.dataset, rows: table.rows, columns: table.columns.length },
    ...(input.noReferenceReason ? { noReferenceReason: input.noReferenceReason } : {}),
  };
  const profile = referenceOf(input);
  if (profile) {
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
  let validated: ValidateResult;
  try {
    validated = validateTable(job, channel ? { share: columnShare(channel) } : {});
  } finally {
    channel?.port.close(); // also when every column was done here and the helper's reply is not read
  }
  const { referenceProfile, ...result } = validated;
  if (!referenceProfile || !input.referenceKey) return result;
  // Stored with what the report says of the reference, so a later run from the profile says the same.
  const { rows: _rows, columns: _columns, ...info } = result.report.reference ?? { rows: 0, columns: 0 };
  return {
    ...result,
    referenceProfile: encodeReferenceProfile({ ...referenceProfile, info }, input.referenceKey),
  };
}

/** The helper thread's part of a job: the columns it claims, posted to the validating thread. */
function runHelper(input: OffThreadValidation, channel: ShareChannel): void {
  const { words, port } = channel;
  let reply: HelperReply;
  try {
    const table = decodeColumnar(input.current);
    reply = {
      outcomes: validateClaimedColumns(table, input.contract, referenceOf(input), () =>
        Atomics.add(words, 0, 1),
      ),
    };
  } catch (err) {
    reply = { error: errorInfo(err) };
  }
  port.postMessage(reply);
  port.close();
  Atomics.store(words, 1, 1);
  Atomics.notify(words, 1);
}

/**
 * Bytes the worker can take without a copy: shared memory as it is, else a standalone ArrayBuffer
 * that can be transferred (a view into a larger one is copied).
 */
function transferable(bytes: Uint8Array): Uint8Array {
  return bytes.buffer instanceof SharedArrayBuffer ||
    (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength)
    ? bytes
    : new Uint8Array(bytes);
}

/** What to transfer with a job: the ArrayBuffers (shared memory is shared, not transferred). */
function transferList(...bytes: (Uint8Array | undefined)[]): ArrayBuffer[] {
  return bytes.flatMap((b) => (b && b.buffer instanceof ArrayBuffer ? [b.buffer] : []));
}

/** A zeroed byte array in shared memory (for data to validate: read it or write it straight in). */
export function sharedBytes(size: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(size));
}

/** Parts (as `encodeColumnar` returns them) joined in shared memory. */
export function sharedConcat(parts: readonly Uint8Array[]): Uint8Array {
  const out = sharedBytes(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function shared(bytes: Uint8Array): Uint8Array {
  if (bytes.buffer instanceof SharedArrayBuffer) return bytes;
  const copy = sharedBytes(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/**
 * Values (numeric cells, categories counted as a quarter) from which a second thread pays: below,
 * a table validates in tens of milliseconds, less than the helper costs to start and share with.
 */
export const SHARE_MIN_CELLS = 1_000_000;

/** Whether a job is worth a helper thread: a large table, a machine with a second core. */
function worthSharing(input: OffThreadValidation): boolean {
  // A reference read from its rows is profiled first, on one thread, before the current columns.
  if (input.reference || availableParallelism() < 2) return false;
  // Fewer bytes than a million cells take (booleans: 1 byte, counted a quarter): no header to parse
  // on this event loop (a 10,000-column header is a megabyte of JSON).
  if (input.current.byteLength < SHARE_MIN_CELLS * 4) return false;
  let header;
  try {
    header = readColumnarHeader(input.current).header;
  } catch {
    return false; // the validating thread reports what is wrong with the bytes
  }
  let cells = 0;
  for (const c of header.columns)
    cells +=
      c.type === 'category' || c.type === 'string' || c.type === 'boolean' ? header.rows / 4 : header.rows;
  return cells >= SHARE_MIN_CELLS;
}

type Message =
  | { kind: 'validate'; id: number; input: OffThreadValidation; channel?: ShareChannel }
  | { kind: 'help'; id: number; input: OffThreadValidation; channel: ShareChannel };
type Reply = { id: number; result?: OffThreadResult; error?: ErrorInfo; helped?: true };

/** How long an idle worker lives: back-to-back validations share it, the memory of the last one is freed soon after. */
export const WORKER_IDLE_MS = 2_000;

/** How long a worker started ahead of need waits for its job (downloads can take a while). */
export const WORKER_WARM_MS = 60_000;

const compiled = (): boolean => __filename.endsWith('.js');

interface Job {
  resolve: (r: OffThreadResult) => void;
  reject: (e: unknown) => void;
  /** The threads the job is on (the validating one, and the helper when it shares). */
  threads: Set<Thread>;
}
const jobs = new Map<number, Job>();
let nextId = 1;

/** One long-lived worker thread, started on first use; it does not keep the process alive while idle. */
class Thread {
  private worker: Worker | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Jobs in flight on this thread. */
  private busy = 0;

  get threadId(): number | undefined {
    return this.worker?.threadId;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(__filename, { workerData: { [MARK]: true } });
    w.on('message', (m: Reply) => {
      const job = jobs.get(m.id);
      this.done(w);
      if (!job) return;
      if (m.helped) {
        job.threads.delete(this);
        return;
      }
      jobs.delete(m.id);
      if (m.result) job.resolve(m.result);
      else job.reject(fromInfo(m.error));
    });
    const fail = (err: unknown): void => {
      if (this.worker === w) this.stop(err);
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`a validation worker exited with code ${code}`)));
    // Idle until a job arrives (after the listeners: attaching one refs the port again).
    w.unref();
    this.worker = w;
    return w;
  }

  /** Starts the thread ahead of need; it ends after `graceMs` if no job comes. */
  warm(graceMs: number): void {
    const w = this.start();
    if (this.busy === 0) this.idle(w, graceMs);
  }

  post(message: Message, transfer: TransferListItem[] = []): void {
    const w = this.start();
    try {
      w.postMessage(message, transfer); // first: a message that does not clone leaves nothing pending
    } catch (err) {
      if (this.busy === 0) this.idle(w, WORKER_IDLE_MS); // a thread started for it must still end
      throw err;
    }
    this.busy++;
    clearTimeout(this.idleTimer);
    w.ref(); // a job in flight keeps the process alive until its answer
  }

  /**
   * Ends the thread. Its jobs fail with `reason`, and so do their other threads: a validating
   * thread would wait for a helper that is gone.
   */
  stop(reason: unknown = new Error('the validation worker was stopped')): void {
    const w = this.worker;
    if (!w) return;
    this.worker = undefined;
    this.busy = 0;
    void w.terminate();
    for (const [id, job] of jobs) {
      if (!job.threads.has(this)) continue;
      jobs.delete(id);
      for (const t of job.threads) if (t !== this) t.stop(reason);
      job.reject(reason);
    }
  }

  private done(w: Worker): void {
    if (this.worker === w && --this.busy <= 0) {
      this.busy = 0;
      this.idle(w, WORKER_IDLE_MS);
    }
  }

  private idle(w: Worker, ms: number): void {
    w.unref(); // idle: do not keep the process alive
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker === w && this.busy === 0) this.stop();
    }, ms);
    this.idleTimer.unref();
  }
}

const validating = new Thread();
const helping = new Thread();

/**
 * Starts the worker ahead of need, so its start-up overlaps the downloads that come first; with the
 * size of the data when known, the helper too if the data is large enough to share.
 */
export function warmValidationWorker(options: { graceMs?: number; bytes?: number } = {}): void {
  if (!compiled()) return;
  const graceMs = options.graceMs ?? WORKER_WARM_MS;
  // A warm-up whose job never comes (the download or the upload failed) must not keep a thread forever.
  validating.warm(graceMs);
  // About 8 bytes a numeric cell in the columnar form.
  if (options.bytes !== undefined && options.bytes >= SHARE_MIN_CELLS * 8 && availableParallelism() >= 2)
    helping.warm(graceMs);
}

/** The validation worker's thread id while one is running (for health checks and tests). */
export function validationWorkerThreadId(): number | undefined {
  return validating.threadId;
}

/** The helper thread's id while one is running (for tests). */
export function helperThreadId(): number | undefined {
  return helping.threadId;
}

/**
 * Validates columnar bytes on the worker thread when running compiled, inline otherwise. The
 * current bytes are transferred, or, when the table is large enough to share with the helper
 * thread, shared (pass bytes from {@link sharedBytes} to save the copy into shared memory).
 */
export function validateColumnarOffThread(
  input: OffThreadValidation,
  options: { inline?: boolean; share?: boolean } = {},
): Promise<OffThreadResult> {
  if (options.inline || !compiled()) return Promise.resolve().then(() => run(input));
  const id = nextId++;
  const share = options.share ?? worthSharing(input);
  const current = share ? shared(input.current) : transferable(input.current);
  const reference = input.reference ? transferable(input.reference) : undefined;
  // In shared memory, the profile is read by both threads without a copy each (cloning 7.5 MB into
  // a message costs milliseconds, on the path of every validation), and stays the caller's.
  const referenceProfile = input.referenceProfile ? shared(input.referenceProfile) : undefined;
  const job = { ...input, current, reference, referenceProfile };
  return new Promise((resolve, reject) => {
    const threads = new Set<Thread>([validating]);
    jobs.set(id, { resolve, reject, threads });
    if (!share) {
      try {
        validating.post({ kind: 'validate', id, input: job }, transferList(current, reference));
      } catch (err) {
        jobs.delete(id); // not sent (it does not clone): nothing is in flight
        throw err;
      }
      return;
    }
    threads.add(helping);
    const words = new Int32Array(new SharedArrayBuffer(8));
    const { port1, port2 } = new MessageChannel();
    const channel = { words, port: port1 };
    try {
      validating.post({ kind: 'validate', id, input: job, channel }, [port1, ...transferList(reference)]);
    } catch (err) {
      jobs.delete(id);
      throw err;
    }
    try {
      helping.post({ kind: 'help', id, input: job, channel: { words, port: port2 } }, [port2]);
    } catch (err) {
      validating.stop(err); // it would wait for the helper's columns: the job fails
    }
  });
}

if (!isMainThread && parentPort && (workerData as Record<string, unknown> | null)?.[MARK]) {
  const port = parentPort;
  port.on('message', (m: Message) => {
    if (m.kind === 'help') {
      runHelper(m.input, m.channel);
      port.postMessage({ id: m.id, helped: true } satisfies Reply);
      return;
    }
    try {
      const result = run(m.input, m.channel);
      const transfer = result.referenceProfile ? [result.referenceProfile.buffer as ArrayBuffer] : [];
      port.postMessage({ id: m.id, result } satisfies Reply, transfer);
    } catch (err) {
      port.postMessage({ id: m.id, error: errorInfo(err) } satisfies Reply);
    }
  });
}
