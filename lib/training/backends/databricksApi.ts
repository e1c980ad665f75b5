import type { TokenCredential } from '@azure/identity';
import { NonRetriableError, TransientError } from '../../errors';
import type { JobState } from '../../contracts/trainingJob';

/**
 * The four Azure Databricks Jobs API 2.2 calls the `databricks` backend makes (runs/submit,
 * runs/get, runs/get-output, runs/cancel), over plain REST:
 *
 * - Auth: a Microsoft Entra token for the Azure Databricks resource (the app id below, a fixed
 *   value for every tenant) from the app's credential, or a personal access token when one is
 *   configured (in Azure only through a Key Vault reference). A token that cannot be had is a
 *   NonRetriableError naming why.
 * - Errors: Databricks answers `{"error_code": "...", "message": "..."}`. 4xx (but 408/429) is not
 *   retried (NonRetriableError with the error_code and message); 408, 429, 5xx and network errors
 *   are retried here a bounded number of times, waiting what Retry-After asks (capped), and then
 *   surface as TransientError so the activity's own retry policy takes over.
 */

/** The Azure Databricks first-party application id: the resource every workspace token is for. */
export const AZURE_DATABRICKS_SCOPE = '2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default';
export const JOBS_API = '/api/2.2/jobs';

/** `state` (older) of runs/get. */
export interface RunState {
  life_cycle_state?: string;
  result_state?: string;
  state_message?: string;
  user_cancelled_or_timedout?: boolean;
  queue_reason?: string;
}

/** `status` (newer) of runs/get. */
export interface RunStatus {
  state?: string;
  termination_details?: { code?: string; type?: string; message?: string };
  queue_details?: { code?: string; message?: string };
}

export interface RunTask {
  run_id?: string;
  task_key?: string;
  state?: RunState;
  status?: RunStatus;
  run_page_url?: string;
}

/** The fields of a runs/get answer Sluice reads. */
export interface Run {
  run_id?: string;
  run_name?: string;
  run_page_url?: string;
  state?: RunState;
  status?: RunStatus;
  tasks?: RunTask[];
  start_time?: number;
  end_time?: number;
}

/** The fields of a runs/get-output answer Sluice reads. */
export interface RunOutput {
  error?: string;
  error_trace?: string;
  logs?: string;
  logs_truncated?: boolean;
}

export interface DatabricksClientOptions {
  /** The workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net. */
  host: string;
  /** Entra credential (the app's managed identity in Azure); used when no `token` is set. */
  credential?: () => TokenCredential;
  /** A personal access token (a Key Vault reference in Azure). */
  token?: string;
  /** Attempts per call for 408/429/5xx and network errors (default 4). */
  maxAttempts?: number;
  /** Longest wait between attempts, whatever Retry-After says (default 20 s). */
  maxRetryDelayMs?: number;
  /** Wait before the first retry when the answer has no Retry-After (default 1 s, doubling). */
  baseRetryDelayMs?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * JSON with 64-bit ids kept exact: run and job ids are int64 and may exceed 2^53, so a long integer
 * value of an `*_id` field is read as a string. Every id Sluice handles is a string.
 */
export function parseDatabricksJson(text: string): unknown {
  return JSON.parse(text.replace(/("[a-z_]*_id"\s*:\s*)(-?\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

const idString = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;

/** A run (or task run) id as the API wants it in a body: a number when exact, else the digits. */
const idValue = (id: string): number | string => {
  const n = Number(id);
  return Number.isSafeInteger(n) && String(n) === id ? n : id;
};

function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

const retriable = (status: number) => status === 408 || status === 429 || status >= 500;

export class DatabricksClient {
  private readonly host: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: DatabricksClientOptions) {
    let url: URL;
    try {
      url = new URL(options.host);
    } catch {
      throw new NonRetriableError(
        'databricks_not_configured',
        `DATABRICKS_HOST is not a URL: ${options.host}`,
      );
    }
    this.host = url.origin;
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  private async authorization(): Promise<string> {
    if (this.options.token) return `Bearer ${this.options.token}`;
    if (!this.options.credential) {
      throw new NonRetriableError(
        'databricks_no_token',
        'no credential for Azure Databricks: set DATABRICKS_TOKEN or run with a managed identity',
      );
    }
    let token;
    try {
      token = await this.options.credential().getToken(AZURE_DATABRICKS_SCOPE);
    } catch (err) {
      throw new NonRetriableError(
        'databricks_no_token',
        `no Microsoft Entra token for Azure Databricks (${AZURE_DATABRICKS_SCOPE}): ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (!token?.token) {
      throw new NonRetriableError(
        'databricks_no_token',
        `no Microsoft Entra token for Azure Databricks (${AZURE_DATABRICKS_SCOPE}): the credential returned none`,
      );
    }
    return `Bearer ${token.token}`;
  }

  /** One API call with the bounded retries described above; resolves with the parsed 2xx body. */
  async call<T>(method: 'GET' | 'POST', path: string, what: string, body?: unknown): Promise<T> {
    const attempts = this.options.maxAttempts ?? 4;
    const maxDelay = this.options.maxRetryDelayMs ?? 20_000;
    let delay = this.options.baseRetryDelayMs ?? 1_000;
    let last = '';
    for (let attempt = 1; ; attempt++) {
      const authorization = await this.authorization();
      let res: Response | undefined;
      let text = '';
      try {
        res = await this.fetchImpl(`${this.host}${path}`, {
          method,
          headers: {
            authorization,
            accept: 'application/json',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
        });
        text = await res.text();
      } catch (err) {
        last = `${what}: ${(err as Error).message}`;
        res = undefined;
      }
      if (res) {
        let json: unknown;
        try {
          json = text ? parseDatabricksJson(text) : {};
        } catch {
          json = undefined;
        }
        if (res.ok) {
          if (json === undefined)
            throw new TransientError(
              'databricks_bad_response',
              `${what}: HTTP ${res.status} with a body that is not JSON`,
            );
          return json as T;
        }
        const e = (json ?? {}) as { error_code?: unknown; message?: unknown };
        const code = typeof e.error_code === 'string' ? e.error_code : undefined;
        const message =
          typeof e.message === 'string' ? e.message : json === undefined ? text.slice(0, 300) : '';
        last = `${what}: HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
        if (!retriable(res.status)) {
          const sluiceCode =
            res.status === 401 || res.status === 403
              ? 'databricks_forbidden'
              : res.status === 404
                ? 'databricks_not_found'
                : 'databricks_rejected';
          const hint =
            sluiceCode === 'databricks_forbidden'
              ? ' (the app identity must be a user or service principal of the workspace, allowed to run jobs)'
              : '';
          throw new NonRetriableError(sluiceCode, `${last}${hint}`);
        }
        const asked = retryAfterMs(res.headers.get('retry-after'), Date.now());
        if (asked !== undefined) delay = asked;
      }
      if (attempt >= attempts) {
        throw new TransientError(
          'databricks_unavailable',
          `${last} (gave up after ${attempts} attempts; will be retried)`,
        );
      }
      await this.sleep(Math.min(delay, maxDelay));
      delay = Math.min(delay * 2, maxDelay);
    }
  }

  async submit(body: Record<string, unknown>): Promise<string> {
    const res = await this.call<{ run_id?: unknown }>('POST', `${JOBS_API}/runs/submit`, 'runs/submit', body);
    const runId = idString(res.run_id);
    if (!runId) throw new TransientError('databricks_bad_response', 'runs/submit answered without a run_id');
    return runId;
  }

  async getRun(runId: string): Promise<Run> {
    const run = await this.call<Record<string, unknown>>(
      'GET',
      `${JOBS_API}/runs/get?run_id=${encodeURIComponent(runId)}`,
      `runs/get ${runId}`,
    );
    const tasks = Array.isArray(run.tasks) ? (run.tasks as Record<string, unknown>[]) : [];
    return {
      ...(run as Run),
      ...(idString(run.run_id) ? { run_id: idString(run.run_id)! } : {}),
      tasks: tasks.map((t) => ({ ...(t as RunTask), run_id: idString(t.run_id) })) as RunTask[],
    };
  }

  getOutput(taskRunId: string): Promise<RunOutput> {
    return this.call<RunOutput>(
      'GET',
      `${JOBS_API}/runs/get-output?run_id=${encodeURIComponent(taskRunId)}`,
      `runs/get-output ${taskRunId}`,
    );
  }

  async cancel(runId: string): Promise<void> {
    await this.call('POST', `${JOBS_API}/runs/cancel`, `runs/cancel ${runId}`, { run_id: idValue(runId) });
  }
}

/** What a run's state means for Sluice, with the words Databricks used. */
export interface MappedRunState {
  state: JobState;
  /** Databricks' own status word(s), e.g. "TERMINATED RUN_EXECUTION_ERROR" or "QUEUED". */
  backendStatus: string;
  error?: { code: string; message: string };
}

const QUEUED_STATES = new Set(['QUEUED', 'PENDING', 'BLOCKED', 'WAITING', 'WAITING_FOR_RETRY']);
const RUNNING_STATES = new Set(['RUNNING', 'TERMINATING']);
const snake = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '_');

/**
 * A run's state → Sluice's. The newer `status` decides when present: QUEUED/PENDING/BLOCKED/WAITING
 * are queued, RUNNING/TERMINATING running, TERMINATED by `termination_details.code` (SUCCESS and
 * SUCCESS_WITH_FAILURES → completed, still subject to the model check; USER_CANCELED and CANCELED →
 * canceled; anything else → failed, code `databricks_<code>`). Otherwise the older `state`:
 * `life_cycle_state` the same way, TERMINATED by `result_state` (TIMEDOUT → time_limit_exceeded),
 * SKIPPED and INTERNAL_ERROR → failed. Unknown (future) values count as running: only the terminal
 * values above end a job, and the monitor's own limits bound the rest.
 */
export function mapRunState(run: Pick<Run, 'state' | 'status'>): MappedRunState {
  const status = run.status?.state;
  // A TERMINATED status without a termination code says less than the older state: use that.
  const undecided =
    status === 'TERMINATED' && !run.status?.termination_details?.code && run.state?.life_cycle_state;
  if (status && !undecided) {
    const details = run.status?.termination_details;
    if (QUEUED_STATES.has(status)) {
      const why = run.status?.queue_details?.code;
      return { state: 'queued', backendStatus: why ? `${status} ${why}` : status };
    }
    if (status !== 'TERMINATED') return { state: 'running', backendStatus: status };
    const code = details?.code ?? 'UNKNOWN';
    const backendStatus = `${status} ${code}`;
    if (code === 'SUCCESS' || code === 'SUCCESS_WITH_FAILURES') return { state: 'completed', backendStatus };
    if (code === 'USER_CANCELED' || code === 'CANCELED') return { state: 'canceled', backendStatus };
    return {
      state: 'failed',
      backendStatus,
      error: {
        code: `databricks_${snake(code)}`,
        message: `the Databricks run ended ${code}${details?.type ? ` (${details.type})` : ''}${details?.message ? `: ${details.message}` : ''}`,
      },
    };
  }
  const life = run.state?.life_cycle_state;
  if (!life) return { state: 'running', backendStatus: 'UNKNOWN' };
  if (QUEUED_STATES.has(life)) return { state: 'queued', backendStatus: life };
  if (RUNNING_STATES.has(life)) return { state: 'running', backendStatus: life };
  const message = run.state?.state_message;
  if (life === 'TERMINATED') {
    const result = run.state?.result_state ?? 'UNKNOWN';
    const backendStatus = `${life} ${result}`;
    if (result === 'SUCCESS' || result === 'SUCCESS_WITH_FAILURES')
      return { state: 'completed', backendStatus };
    if (result === 'CANCELED') return { state: 'canceled', backendStatus };
    if (result === 'TIMEDOUT') {
      return {
        state: 'failed',
        backendStatus,
        error: {
          code: 'time_limit_exceeded',
          message: `the Databricks run timed out${message ? `: ${message}` : ''}`,
        },
      };
    }
    return {
      state: 'failed',
      backendStatus,
      error: {
        code: `databricks_${snake(result)}`,
        message: `the Databricks run ended ${result}${message ? `: ${message}` : ''}`,
      },
    };
  }
  if (life === 'SKIPPED' || life === 'INTERNAL_ERROR') {
    return {
      state: 'failed',
      backendStatus: life,
      error: {
        code: `databricks_${snake(life)}`,
        message: `the Databricks run ended ${life}${message ? `: ${message}` : ''}`,
      },
    };
  }
  return { state: 'running', backendStatus: life };
}
