import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ArtifactStore } from '../../../lib/storage/blob';

/**
 * A local stand-in for the Azure Databricks Jobs API 2.2, speaking its documented wire format on
 * loopback HTTP:
 *
 *   POST /api/2.2/jobs/runs/submit      {run_name, tasks[1], environments?, idempotency_token?, ...}
 *                                        → 200 {run_id}; the same idempotency_token (≤ 64 chars)
 *                                        → the same run_id, never a second run
 *   GET  /api/2.2/jobs/runs/get?run_id=  → 200 Run: `state` {life_cycle_state, result_state,
 *                                        state_message, user_cancelled_or_timedout} and `status`
 *                                        {state, termination_details {code, type, message},
 *                                        queue_details}, `tasks[]` with their own run ids
 *   GET  /api/2.2/jobs/runs/get-output?run_id=<task run id> → 200 {metadata, error, error_trace, logs};
 *                                        the parent run of a task → 400 (like Databricks)
 *   POST /api/2.2/jobs/runs/cancel      {run_id} → 200 {}; the run ends USER_CANCELED
 *
 * Errors are `{"error_code": "...", "message": "..."}` with the HTTP status Databricks uses. A
 * bearer token is required (none → 401 UNAUTHENTICATED, another → 403 PERMISSION_DENIED).
 *
 * Each runs/get advances a run one step along its script (by default QUEUED → PENDING → RUNNING →
 * TERMINATING → TERMINATED with SUCCESS). With an `executor`, reaching RUNNING runs the task for
 * real (`pythonVolumeExecutor` runs the python file with /usr/bin/python3 against a Unity Catalog
 * volume simulated over the artifact account's jobs container); the run stays RUNNING until the
 * process ends, then terminates SUCCESS or RUN_EXECUTION_ERROR with the process's error and trace.
 * Webhook destinations (id → URL) get the documented notification payload on success and failure.
 */

export type LifeCycleState =
  | 'QUEUED'
  | 'PENDING'
  | 'RUNNING'
  | 'TERMINATING'
  | 'TERMINATED'
  | 'SKIPPED'
  | 'INTERNAL_ERROR'
  | 'BLOCKED'
  | 'WAITING_FOR_RETRY';

/** How a run that reaches TERMINATED ends, in both the older and the newer vocabulary. */
export interface RunEnding {
  resultState: string;
  /** `status.termination_details`; omitted = a run the newer `status` does not describe (older API). */
  code?: string;
  type?: string;
  message: string;
}

export const ENDINGS = {
  success: { resultState: 'SUCCESS', code: 'SUCCESS', type: 'SUCCESS', message: '' },
  failed: {
    resultState: 'FAILED',
    code: 'RUN_EXECUTION_ERROR',
    type: 'CLIENT_ERROR',
    message: 'Workload failed, see run output for details',
  },
  canceled: {
    resultState: 'CANCELED',
    code: 'USER_CANCELED',
    type: 'SUCCESS',
    message: 'Run canceled by user',
  },
  clusterError: {
    resultState: 'FAILED',
    code: 'CLUSTER_ERROR',
    type: 'CLIENT_ERROR',
    message: 'The cluster could not be started',
  },
  timedOut: { resultState: 'TIMEDOUT', message: 'Run timed out after 600 seconds' },
} satisfies Record<string, RunEnding>;

export const HAPPY_PATH: LifeCycleState[] = ['QUEUED', 'PENDING', 'RUNNING', 'TERMINATING', 'TERMINATED'];

const STATUS_OF: Record<LifeCycleState, string> = {
  QUEUED: 'QUEUED',
  PENDING: 'PENDING',
  RUNNING: 'RUNNING',
  TERMINATING: 'TERMINATING',
  TERMINATED: 'TERMINATED',
  SKIPPED: 'TERMINATED',
  INTERNAL_ERROR: 'TERMINATED',
  BLOCKED: 'BLOCKED',
  WAITING_FOR_RETRY: 'WAITING',
};

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type Executor = (run: FakeRun, signal: AbortSignal) => Promise<ExecResult>;

export interface FakeRun {
  runId: number;
  taskRunId: number;
  body: Record<string, unknown>;
  task: Record<string, unknown>;
  script: LifeCycleState[];
  step: number;
  ending: RunEnding;
  /** Omit `status` from runs/get (a workspace answering only the older fields). */
  legacyOnly: boolean;
  startTime: number;
  endTime?: number;
  execution?: { done: boolean; result?: ExecResult; abort: AbortController };
  output: { error?: string; error_trace?: string; logs?: string };
  notified: boolean;
}

export interface FakeDatabricks {
  url: string;
  runs: Map<number, FakeRun>;
  requests: { method: string; path: string; authorization: string | undefined; body?: unknown }[];
  /** The next submitted run's script and ending (or an existing run's). */
  setScript(script: LifeCycleState[], ending?: RunEnding, runId?: number, legacyOnly?: boolean): void;
  /** The next N requests fail with this status (429 / 503 to test retries), with an optional Retry-After. */
  failNext(status: number, count?: number, retryAfter?: string): void;
  /** Webhook notifications sent: destination id, URL, payload and the answer's status. */
  notifications: { id: string; url: string; payload: unknown; status: number }[];
  close(): Promise<void>;
}

export interface FakeDatabricksOptions {
  acceptToken?: string;
  /** Existing clusters; any id is accepted when omitted. */
  clusters?: string[];
  executor?: Executor;
  /** Notification destinations: id → URL the payload is POSTed to. */
  destinations?: Record<string, string>;
  workspaceId?: string;
}

const API = '/api/2.2/jobs';
const TASK_TYPES = ['spark_python_task', 'notebook_task', 'python_wheel_task', 'spark_jar_task'] as const;

export async function startFakeDatabricks(options: FakeDatabricksOptions = {}): Promise<FakeDatabricks> {
  const accept = options.acceptToken ?? 'fake-databricks-token';
  const runs = new Map<number, FakeRun>();
  const tokens = new Map<string, number>();
  const requests: FakeDatabricks['requests'] = [];
  const notifications: FakeDatabricks['notifications'] = [];
  let next: { script: LifeCycleState[]; ending: RunEnding; legacyOnly: boolean } = {
    script: HAPPY_PATH,
    ending: ENDINGS.success,
    legacyOnly: false,
  };
  let failures: { status: number; count: number; retryAfter?: string } | undefined;
  let nextRunId = 7_000_000_000_001;
  let base = '';
  const pending = new Set<Promise<unknown>>();

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string) =>
    send(res, status, { error_code: code, message });

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? (JSON.parse(text) as unknown) : undefined;
  };

  const lifeOf = (run: FakeRun): LifeCycleState => run.script[Math.min(run.step, run.script.length - 1)]!;

  const finish = (run: FakeRun) => {
    run.endTime ??= Date.now();
    if (run.notified || !options.destinations) return;
    run.notified = true;
    const success = run.ending.resultState === 'SUCCESS';
    const hooks = (run.body.webhook_notifications ?? {}) as Record<string, { id: string }[] | undefined>;
    for (const { id } of hooks[success ? 'on_success' : 'on_failure'] ?? []) {
      const url = options.destinations[id];
      if (!url) continue;
      const payload = {
        event_type: success ? 'jobs.on_success' : 'jobs.on_failure',
        workspace_id: options.workspaceId ?? '1234567890123456',
        run: { run_id: String(run.runId) },
        job: { job_id: String(run.runId + 1), name: String(run.body.run_name ?? '') },
      };
      const p = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      })
        .then(async (r) => {
          await r.text();
          notifications.push({ id, url, payload, status: r.status });
        })
        .catch(() => notifications.push({ id, url, payload, status: 0 }));
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
  };

  /** After one runs/get: the next step (unless the task is still executing). */
  const advance = (run: FakeRun) => {
    const life = lifeOf(run);
    if (life === 'RUNNING' && options.executor) {
      if (!run.execution) {
        const abort = new AbortController();
        run.execution = { done: false, abort };
        const p = options
          .executor(run, abort.signal)
          .catch((err: unknown) => ({ exitCode: 1, stdout: '', stderr: String(err) }))
          .then((result) => {
            run.execution = { done: true, result, abort };
            if (run.ending === ENDINGS.canceled) return;
            if (result.exitCode !== 0) {
              const lines = result.stderr.trim().split('\n');
              run.ending = ENDINGS.failed;
              run.output = {
                error: lines[lines.length - 1] ?? `exit code ${result.exitCode}`,
                error_trace: result.stderr,
                logs: result.stdout,
              };
            } else run.output = { logs: result.stdout };
          });
        pending.add(p);
        void p.finally(() => pending.delete(p));
        return;
      }
      if (!run.execution.done) return;
    }
    if (run.step < run.script.length - 1) run.step++;
    if (lifeOf(run) === 'TERMINATED' || lifeOf(run) === 'SKIPPED' || lifeOf(run) === 'INTERNAL_ERROR')
      finish(run);
  };

  const describe = (run: FakeRun) => {
    const life = lifeOf(run);
    const terminal = life === 'TERMINATED' || life === 'SKIPPED' || life === 'INTERNAL_ERROR';
    const e = run.ending;
    const state = {
      life_cycle_state: life,
      ...(life === 'TERMINATED' ? { result_state: e.resultState } : {}),
      state_message: terminal ? e.message : '',
      user_cancelled_or_timedout: terminal && (e.resultState === 'CANCELED' || e.resultState === 'TIMEDOUT'),
      ...(life === 'QUEUED' ? { queue_reason: 'Queued due to reaching maximum concurrent runs' } : {}),
    };
    const code =
      life === 'TERMINATED'
        ? e.code
        : life === 'SKIPPED'
          ? 'SKIPPED'
          : life === 'INTERNAL_ERROR'
            ? 'INTERNAL_ERROR'
            : undefined;
    const status = {
      state: STATUS_OF[life],
      ...(terminal && code
        ? {
            termination_details: {
              code,
              type: life === 'INTERNAL_ERROR' ? 'INTERNAL_ERROR' : (e.type ?? 'CLIENT_ERROR'),
              message: e.message,
            },
          }
        : {}),
      ...(life === 'QUEUED'
        ? { queue_details: { code: 'ACTIVE_RUNS_LIMIT_REACHED', message: 'queued' } }
        : {}),
    };
    const withStatus = !run.legacyOnly && !(terminal && code === undefined);
    const page = `${base}/?o=1#job/runs/${run.runId}`;
    return {
      job_id: run.runId + 1,
      run_id: run.runId,
      number_in_job: run.runId,
      run_name: run.body.run_name ?? 'Untitled',
      run_type: 'SUBMIT_RUN',
      creator_user_name: 'sluice-identity',
      state,
      ...(withStatus ? { status } : {}),
      tasks: [
        {
          run_id: run.taskRunId,
          task_key: run.task.task_key,
          state,
          ...(withStatus ? { status } : {}),
          run_page_url: `${page}/task/${run.taskRunId}`,
          attempt_number: 0,
        },
      ],
      run_page_url: page,
      start_time: run.startTime,
      ...(run.endTime ? { end_time: run.endTime } : { end_time: 0 }),
      setup_duration: 0,
      execution_duration: 0,
      cleanup_duration: 0,
    };
  };

  const validateSubmit = (body: Record<string, unknown>): string | undefined => {
    const token = body.idempotency_token;
    if (token !== undefined && (typeof token !== 'string' || token.length > 64))
      return 'idempotency_token must be a string of at most 64 characters';
    const tasks = body.tasks;
    if (!Array.isArray(tasks) || tasks.length === 0) return 'A run needs at least one task in "tasks"';
    if (tasks.length > 1) return 'this fake runs one task per run';
    const task = tasks[0] as Record<string, unknown>;
    if (typeof task.task_key !== 'string' || !/^[\w-]{1,100}$/.test(task.task_key))
      return 'task_key is required (letters, digits, "_" and "-")';
    const kinds = TASK_TYPES.filter((k) => k in task);
    if (kinds.length !== 1) return `a task needs exactly one task type, got ${kinds.length}`;
    const kind = kinds[0]!;
    const spec = task[kind] as Record<string, unknown>;
    if (kind === 'spark_python_task' && typeof spec.python_file !== 'string')
      return 'python_file is required';
    if (kind === 'spark_python_task' && spec.parameters !== undefined && !Array.isArray(spec.parameters))
      return 'parameters must be an array of strings';
    if (kind === 'notebook_task' && typeof spec.notebook_path !== 'string')
      return 'notebook_path is required';
    if (
      kind === 'python_wheel_task' &&
      (typeof spec.package_name !== 'string' || typeof spec.entry_point !== 'string')
    )
      return 'package_name and entry_point are required';
    const compute = ['new_cluster', 'existing_cluster_id', 'job_cluster_key', 'environment_key'].filter(
      (k) => k in task,
    );
    if (compute.length > 1) return `a task takes one compute, got ${compute.join(', ')}`;
    if (compute.length === 0 && kind !== 'notebook_task')
      return `${kind} on serverless compute needs an environment_key naming one of "environments"`;
    if ('environment_key' in task) {
      const envs = Array.isArray(body.environments) ? (body.environments as Record<string, unknown>[]) : [];
      const env = envs.find((e) => e.environment_key === task.environment_key);
      if (!env) return `environment_key ${String(task.environment_key)} is not in "environments"`;
      const envSpec = (env.spec ?? {}) as Record<string, unknown>;
      if (!envSpec.environment_version && !envSpec.client) return 'an environment needs environment_version';
    }
    if ('new_cluster' in task) {
      const c = task.new_cluster as Record<string, unknown>;
      if (typeof c.spark_version !== 'string') return 'new_cluster.spark_version is required';
      const env = c.spark_env_vars as Record<string, unknown> | undefined;
      if (env && Object.values(env).some((v) => typeof v !== 'string'))
        return 'spark_env_vars values must be strings';
    }
    if (
      'existing_cluster_id' in task &&
      options.clusters &&
      !options.clusters.includes(String(task.existing_cluster_id))
    )
      return `Cluster ${String(task.existing_cluster_id)} does not exist`;
    if ('libraries' in task && !Array.isArray(task.libraries)) return 'libraries must be an array';
    if (
      task.timeout_seconds !== undefined &&
      (!Number.isInteger(task.timeout_seconds) || (task.timeout_seconds as number) < 0)
    )
      return 'timeout_seconds must be a non-negative integer';
    return undefined;
  };

  const runIdParam = (url: URL): number | undefined => {
    const raw = url.searchParams.get('run_id');
    return raw && /^\d+$/.test(raw) ? Number(raw) : undefined;
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      let body: unknown;
      try {
        body = await readBody(req);
      } catch {
        return error(res, 400, 'MALFORMED_REQUEST', 'Invalid JSON given in the body of the request');
      }
      requests.push({
        method: req.method ?? '',
        path: url.pathname + url.search,
        authorization: req.headers.authorization,
        body,
      });
      const auth = req.headers.authorization;
      if (!auth?.startsWith('Bearer '))
        return error(
          res,
          401,
          'UNAUTHENTICATED',
          'Credential was not sent or was of an unsupported type for this API.',
        );
      if (auth.slice('Bearer '.length) !== accept)
        return error(res, 403, 'PERMISSION_DENIED', 'Invalid access token.');
      if (failures && failures.count > 0) {
        failures.count--;
        const code = failures.status === 429 ? 'REQUEST_LIMIT_EXCEEDED' : 'TEMPORARILY_UNAVAILABLE';
        return send(
          res,
          failures.status,
          { error_code: code, message: 'try again later' },
          failures.retryAfter ? { 'retry-after': failures.retryAfter } : {},
        );
      }
      const route = `${req.method} ${url.pathname}`;
      if (route === `POST ${API}/runs/submit`) {
        if (typeof body !== 'object' || body === null)
          return error(res, 400, 'MALFORMED_REQUEST', 'a JSON body is required');
        const b = body as Record<string, unknown>;
        const problem = validateSubmit(b);
        if (problem) return error(res, 400, 'INVALID_PARAMETER_VALUE', problem);
        const token = b.idempotency_token as string | undefined;
        if (token && tokens.has(token)) return send(res, 200, { run_id: tokens.get(token) });
        const runId = nextRunId;
        nextRunId += 2;
        const run: FakeRun = {
          runId,
          taskRunId: runId + 1,
          body: b,
          task: (b.tasks as Record<string, unknown>[])[0]!,
          script: next.script,
          ending: next.ending,
          legacyOnly: next.legacyOnly,
          step: 0,
          startTime: Date.now(),
          output: {},
          notified: false,
        };
        runs.set(runId, run);
        if (token) tokens.set(token, runId);
        return send(res, 200, { run_id: runId });
      }
      if (route === `GET ${API}/runs/get`) {
        const id = runIdParam(url);
        const run = id === undefined ? undefined : runs.get(id);
        if (!run)
          return error(
            res,
            400,
            'INVALID_PARAMETER_VALUE',
            `Run ${url.searchParams.get('run_id')} does not exist.`,
          );
        // Answer with the current step, then move on: the first read sees the first state.
        const described = describe(run);
        advance(run);
        return send(res, 200, described);
      }
      if (route === `GET ${API}/runs/get-output`) {
        const id = runIdParam(url);
        if (id !== undefined && runs.has(id))
          return error(
            res,
            400,
            'INVALID_PARAMETER_VALUE',
            'Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead.',
          );
        const run = [...runs.values()].find((r) => r.taskRunId === id);
        if (!run)
          return error(
            res,
            400,
            'INVALID_PARAMETER_VALUE',
            `Run ${url.searchParams.get('run_id')} does not exist.`,
          );
        const d = describe(run);
        return send(res, 200, { metadata: d.tasks[0], ...run.output });
      }
      if (route === `POST ${API}/runs/cancel`) {
        const raw = (body as { run_id?: unknown } | undefined)?.run_id;
        const run = typeof raw === 'number' || typeof raw === 'string' ? runs.get(Number(raw)) : undefined;
        if (!run) return error(res, 400, 'INVALID_PARAMETER_VALUE', `Run ${String(raw)} does not exist.`);
        const life = lifeOf(run);
        if (life !== 'TERMINATED' && life !== 'SKIPPED' && life !== 'INTERNAL_ERROR') {
          run.execution?.abort.abort();
          run.script = [...run.script.slice(0, run.step + 1), 'TERMINATING', 'TERMINATED'];
          run.ending = ENDINGS.canceled;
          if (run.execution) run.execution.done = true;
        }
        return send(res, 200, {});
      }
      return error(res, 404, 'ENDPOINT_NOT_FOUND', `No API found for '${req.method} ${url.pathname}'`);
    })().catch((err: unknown) => {
      if (!res.headersSent) error(res, 500, 'INTERNAL_ERROR', String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    runs,
    requests,
    notifications,
    setScript(script, ending = ENDINGS.success, runId, legacyOnly = false) {
      if (runId !== undefined) {
        const run = runs.get(runId);
        if (run) Object.assign(run, { script, ending, step: 0, legacyOnly });
        return;
      }
      next = { script, ending, legacyOnly };
    },
    failNext(status, count = 1, retryAfter) {
      failures = { status, count, ...(retryAfter !== undefined ? { retryAfter } : {}) };
    },
    async close() {
      for (const run of runs.values()) run.execution?.abort.abort();
      await Promise.allSettled([...pending]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Runs a spark_python_task for real with a local Python, as a cluster would with Unity Catalog
 * volumes that are external volumes over the artifact account's `jobs` container (`volumeRoot`,
 * read-only to runs) and its `joboutputs` container (`outputRoot`): paths under them in the task's
 * parameters and environment are files of those containers. The job's `data/` is downloaded into a
 * scratch folder that stands for the jobs volume, the python file (a workspace path under one of
 * `workspace`'s prefixes → a local folder) runs with the new cluster's `spark_env_vars` and the
 * parameters, and whatever it wrote under `<outputRoot>/<jobId>/` is uploaded to
 * `joboutputs/<jobId>/`. What it wrote into the jobs volume is not uploaded: runs may not write there.
 *
 * As the driver's FUSE mounts (`/Volumes`, `/Workspace`) would, a path in a parameter or variable
 * resolves whether it is the whole value or follows the first `=` (`--env NAME=/Volumes/…`).
 */
export function pythonVolumeExecutor(options: {
  store: ArtifactStore;
  volumeRoot: string;
  outputRoot: string;
  workspace: Record<string, string>;
  python?: string;
}): Executor {
  const container = 'jobs';
  const outputs = 'joboutputs';
  return async (run, signal) => {
    const spec = run.task.spark_python_task as { python_file: string; parameters?: string[] } | undefined;
    if (!spec) return { exitCode: 1, stdout: '', stderr: 'this executor runs spark_python_task only' };
    const root0 = options.volumeRoot.replace(/\/+$/, '');
    // Code Sluice staged in the jobs volume (jobs/<jobId>/code/), or a workspace file.
    const inVolume = spec.python_file.startsWith(`${root0}/`);
    const prefix = Object.keys(options.workspace).find((p) => spec.python_file.startsWith(`${p}/`));
    if (!prefix && !inVolume) return { exitCode: 1, stdout: '', stderr: `No such file: ${spec.python_file}` };
    const env = ((run.task.new_cluster as Record<string, unknown> | undefined)?.spark_env_vars ??
      {}) as Record<string, string>;
    const volume = await mkdtemp(path.join(tmpdir(), 'fake-volume-'));
    const outVolume = await mkdtemp(path.join(tmpdir(), 'fake-volume-out-'));
    try {
      const root = options.volumeRoot.replace(/\/+$/, '');
      const outRoot = options.outputRoot.replace(/\/+$/, '');
      const mounts: [string, string][] = [
        [root, volume],
        [outRoot, outVolume],
        ...Object.entries(options.workspace),
      ];
      const under = (v: string, prefix: string) => v === prefix || v.startsWith(`${prefix}/`);
      const mapPath = (v: string) => {
        const m = mounts.find(([prefix]) => under(v, prefix));
        return m ? m[1] + v.slice(m[0].length) : v;
      };
      // The path itself, or the value after NAME= (the launcher's --env NAME=VALUE).
      const pathOf = (v: string) => {
        const eq = /^[A-Za-z_][A-Za-z0-9_]*=/.exec(v);
        return eq ? { head: eq[0], path: v.slice(eq[0].length) } : { head: '', path: v };
      };
      const local = (v: string) => {
        const { head, path: p } = pathOf(v);
        return head + mapPath(p);
      };
      const jobIds = new Set<string>();
      for (const v of [...Object.values(env), ...(spec.parameters ?? []), spec.python_file]) {
        const p = pathOf(v).path;
        if (p.startsWith(`${root}/`)) jobIds.add(p.slice(root.length + 1).split('/')[0]!);
        if (p.startsWith(`${outRoot}/`)) jobIds.add(p.slice(outRoot.length + 1).split('/')[0]!);
      }
      for (const jobId of jobIds) {
        // The job's folder as the run reads it (data, staged code, a score job's model and input).
        for await (const blob of options.store.list(container, `${jobId}/`)) {
          const target = path.join(volume, ...blob.path.split('/'));
          await mkdir(path.dirname(target), { recursive: true });
          await writeFile(target, (await options.store.getBuffer({ container, path: blob.path })).data);
        }
        await mkdir(path.join(outVolume, jobId), { recursive: true });
      }
      const file = inVolume
        ? local(spec.python_file)
        : path.join(options.workspace[prefix!]!, spec.python_file.slice(prefix!.length + 1));
      const result = await new Promise<ExecResult>((resolve) => {
        const child = spawn(
          options.python ?? '/usr/bin/python3',
          [file, ...(spec.parameters ?? []).map(local)],
          {
            cwd: path.dirname(file),
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, local(v)])),
            },
            signal,
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', (err) => resolve({ exitCode: 1, stdout, stderr: stderr + String(err) }));
        child.on('close', (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
      });
      for (const jobId of jobIds) {
        const out = path.join(outVolume, jobId);
        const walk = async (dir: string): Promise<string[]> => {
          const entries = await readdir(dir, { withFileTypes: true });
          const files = await Promise.all(
            entries.map((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)])),
          );
          return files.flat();
        };
        for (const f of await walk(out)) {
          const rel = path.relative(out, f).split(path.sep).join('/');
          await options.store.put({ container: outputs, path: `${jobId}/${rel}` }, await readFile(f), {
            condition: 'overwrite',
          });
        }
      }
      return result;
    } finally {
      await rm(volume, { recursive: true, force: true });
      await rm(outVolume, { recursive: true, force: true });
    }
  };
}
