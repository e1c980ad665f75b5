/**
 * Shared set-up of the pipeline e2e tests: the whole Sluice app on devhost (real Durable engine,
 * Azurite, the Cosmos emulator, local training workers), driven only over HTTP as a user would,
 * with approvals decided through the real approval page. Needs `dist/` (npm test builds it).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { decideThroughPage, outboxMessages, type OutboxMessage } from '../../../cli/reviewer';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../../devhost/services/wellKnown';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import type { RunningDevhost } from '../../support/devhost';
import { repoRoot, startDevhost } from '../../support/devhost';
import { freePort } from '../../support/emulators';

export const WAGES_CSV = path.join(repoRoot, 'data', 'cps-wages-1985.csv');
export const DRIFTED_CSV = path.join(repoRoot, 'examples', 'data', 'wages-2024-dollars.csv');
/** Every feature column of the wages data (the target is `wage`), for pipelines that train on all of it. */
export const WAGE_FEATURES = [
  'education',
  'experience',
  'age',
  'gender',
  'race',
  'south',
  'union',
  'married',
  'occupation',
  'sector',
];
/** Two people as the wages data has them, for predict requests against a deployed wages model. */
export const WAGES_ROWS: readonly Record<string, unknown>[] = [
  {
    education: 16,
    experience: 5,
    age: 27,
    gender: 'female',
    race: 'white',
    south: 0,
    union: 0,
    married: 0,
    occupation: 'professional',
    sector: 'other',
  },
  {
    education: 10,
    experience: 30,
    age: 46,
    gender: 'male',
    race: 'other',
    south: 1,
    union: 1,
    married: 1,
    occupation: 'service',
    sector: 'manufacturing',
  },
];
/** Thousands of deep, slowly learning trees: a training job that is still running seconds later. */
export const slowTraining = (timeLimitSeconds: number) => ({
  algorithm: 'gradient_boosting',
  target: 'wage',
  features: WAGE_FEATURES,
  hyperparameters: {
    rounds: 5000,
    learningRate: 0.001,
    maxDepth: 12,
    minSamplesLeaf: 1,
    earlyStoppingRounds: 0,
  },
  timeLimitSeconds,
});

export const REQUESTER = 'requester@example.com';
export const REVIEWER = 'reviewer@example.com';

type Json = Record<string, unknown>;
export type RunView = RunDocument & { timing: { totalMs: number; computeMs: number; peopleMs: number } };

/** The sample pipeline with a new name (and model), fast settings, and any section replaced. */
export function testPipeline(name: string, over: Json = {}): Json {
  const base = JSON.parse(
    readFileSync(path.join(repoRoot, 'examples', 'pipelines', 'wages.json'), 'utf8'),
  ) as Json;
  return {
    ...base,
    name,
    modelName: name,
    approval: { reviewers: [REVIEWER, 'lead@example.com'], requiredApprovals: 1, timeout: '10m' },
    ...over,
  };
}

export interface Ports {
  http: number;
  blob: number;
  queue: number;
  table: number;
  cosmos: number;
}

export async function freePorts(): Promise<Ports> {
  return {
    http: await freePort(),
    blob: await freePort(),
    queue: await freePort(),
    table: await freePort(),
    cosmos: await freePort(),
  };
}

export interface PipelineHarness {
  host: RunningDevhost;
  url: string;
  outbox: ContainerClient;
  blobs: BlobServiceClient;
  api(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  put(definition: Json): Promise<number>;
  start(pipeline: string, csvFile?: string): Promise<string>;
  run(id: string): Promise<RunView>;
  until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  waitFor(id: string, what: string, test: (r: RunView) => boolean, timeoutMs?: number): Promise<RunView>;
  finished(id: string, timeoutMs?: number): Promise<RunView>;
  messages(runId: string): Promise<OutboxMessage[]>;
  link(runId: string, to?: string, kind?: string): Promise<string>;
  decide(runId: string, decision: 'approve' | 'reject', comment?: string): Promise<void>;
  model(name: string): Promise<{
    latestVersion: number;
    aliases: Record<string, { version: number }>;
    aliasHistory: { alias: string; to: number }[];
  } | null>;
  durable(instanceId: string): Promise<{ runtimeStatus: string }>;
  /**
   * The orchestration's status once it is no longer Running or Pending: a run document says it
   * ended (finishRun) a moment before the orchestration's last episode completes.
   */
  ended(instanceId: string): Promise<{ runtimeStatus: string }>;
  /** SIGKILL devhost (its whole process group when started `detached`) and start it again on the same data folder and ports. */
  crashAndRestart(whileDown?: () => void): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts devhost on Sluice. With `dataDir` it persists there (and `ports` keep every endpoint the
 * same across a restart, since stored artifact URIs name the blob port); otherwise in memory.
 */
export async function startPipelineHarness(
  options: {
    dataDir?: string;
    ports?: Ports;
    env?: Record<string, string>;
    /** Start devhost as a process group leader: crashAndRestart then SIGKILLs the whole group. */
    detached?: boolean;
  } = {},
  retry = true,
): Promise<PipelineHarness> {
  const ports = options.ports ?? { ...(await freePorts()) };
  const signingKey = randomBytes(32).toString('base64');
  const devhostOptions = {
    app: '.',
    port: ports.http,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    args: [
      '--blob-port',
      String(ports.blob),
      ...(options.ports
        ? [
            '--queue-port',
            String(ports.queue),
            '--table-port',
            String(ports.table),
            '--cosmos-port',
            String(ports.cosmos),
          ]
        : []),
    ],
    env: {
      APPROVAL_SIGNING_KEYS: JSON.stringify({ e2e: signingKey }),
      APPROVAL_ACTIVE_KEY_ID: 'e2e',
      NOTIFIER: 'outbox',
      PUBLIC_BASE_URL: `http://localhost:${ports.http}`,
      DURABLE_TASK_HUB: 'PipelineE2E',
      // Short, so a run whose worker died with the host is retrained soon after the restart; seven
      // missed 2 s heartbeats, so a busy 2-core CI machine does not declare a live worker dead.
      TRAINING_HEARTBEAT_STALE_SECONDS: '15',
      ...options.env,
    },
    readyTimeoutMs: 120_000,
    ...(options.detached ? { detached: true } : {}),
  };
  let host: RunningDevhost;
  try {
    host = await startDevhost(devhostOptions);
  } catch (err) {
    // The ports were free when picked, but another process on this machine may take one before
    // devhost binds it: pick again, once.
    if (options.ports || !retry) throw err;
    return startPipelineHarness(options, false);
  }
  const url = `http://localhost:${ports.http}`;
  const blobs = BlobServiceClient.fromConnectionString(
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${ports.blob}/${AZURITE_ACCOUNT};`,
  );
  const outbox = blobs.getContainerClient('outbox');

  const h: PipelineHarness = {
    get host() {
      return host;
    },
    url,
    outbox,
    blobs,
    api(method, route, body, headers = {}) {
      // A POST without a body still says JSON: state-changing endpoints take JSON only (CSRF guard).
      const isJson =
        (body !== undefined && typeof body !== 'string' && !(body instanceof Buffer)) ||
        (body === undefined && method !== 'GET' && method !== 'HEAD');
      return fetch(`${url}${route}`, {
        method,
        headers: {
          ...(isJson ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : isJson ? JSON.stringify(body) : (body as string | Buffer),
      });
    },
    async put(definition) {
      const res = await h.api('PUT', `/api/pipelines/${String(definition.name)}`, definition);
      const body = (await res.json()) as { version: number };
      if (res.status !== 201) throw new Error(`PUT pipeline answered ${res.status}: ${JSON.stringify(body)}`);
      return body.version;
    },
    async start(pipeline, csvFile = WAGES_CSV) {
      const res = await h.api('POST', `/api/pipelines/${pipeline}/runs`, readFileSync(csvFile), {
        'content-type': 'text/csv',
        'x-ms-client-principal-name': REQUESTER,
      });
      const body = (await res.json()) as { runId: string };
      if (res.status !== 202) throw new Error(`start answered ${res.status}: ${JSON.stringify(body)}`);
      return body.runId;
    },
    async run(id) {
      const res = await h.api('GET', `/api/runs/${id}`);
      if (res.status !== 200) throw new Error(`GET run ${id} answered ${res.status}`);
      return (await res.json()) as RunView;
    },
    async until(what, probe, timeoutMs = 90_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const v = await probe().catch(() => undefined);
        if (v !== undefined) return v;
        if (Date.now() > end) {
          const log = host
            .output()
            .split('\n')
            .filter((l) => !/Functions\.(getRun|scheduleRetraining)'/.test(l))
            .join('\n');
          throw new Error(`timed out waiting for ${what}\n${log.slice(-6000)}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async waitFor(id, what, test, timeoutMs) {
      let last: RunView | undefined;
      try {
        return await h.until(
          `${id}: ${what}`,
          async () => {
            last = await h.run(id);
            return test(last) ? last : undefined;
          },
          timeoutMs,
        );
      } catch (err) {
        const steps = last?.steps.map(
          (s) => `${s.name}:${s.status}${s.error ? ` (${s.error.message})` : ''}`,
        );
        throw new Error(
          `${(err as Error).message}\nrun: ${last?.status} ${last?.reason ?? ''} ${steps?.join(', ')}`,
          { cause: err },
        );
      }
    },
    finished(id, timeoutMs) {
      return h.waitFor(
        id,
        'the end',
        (r) => ['succeeded', 'stopped', 'failed', 'canceled'].includes(r.status),
        timeoutMs,
      );
    },
    messages(runId) {
      return outboxMessages(outbox, runId);
    },
    link(runId, to = REVIEWER, kind = 'request') {
      return h.until(`${kind} link for ${to}`, async () => {
        return (await h.messages(runId)).find((m) => m.to === to && m.kind === kind)?.link;
      });
    },
    async decide(runId, decision, comment = '') {
      const result = await decideThroughPage(await h.link(runId), decision, comment);
      if (result.status !== 200) throw new Error(`decision answered ${result.status}: ${result.notice}`);
    },
    async model(name) {
      const res = await h.api('GET', `/api/models/${name}`);
      if (res.status === 404) return null;
      return (await res.json()) as Awaited<ReturnType<PipelineHarness['model']>>;
    },
    async durable(instanceId) {
      const res = await h.api(
        'GET',
        `/runtime/webhooks/durabletask/instances/${encodeURIComponent(instanceId)}`,
      );
      return (await res.json()) as { runtimeStatus: string };
    },
    async ended(instanceId) {
      return h.until(`the orchestration ${instanceId} to end`, async () => {
        const d = await h.durable(instanceId);
        return d.runtimeStatus === 'Running' || d.runtimeStatus === 'Pending' ? undefined : d;
      });
    },
    async crashAndRestart(whileDown) {
      if (options.detached) await host.killGroup();
      else await host.kill();
      whileDown?.();
      host = await startDevhost(devhostOptions);
    },
    async stop() {
      await host.stop();
    },
  };
  return h;
}

/** Each step as `name:status`, in order. */
export function stepStatuses(run: { steps: { name: string; status: string }[] }): string[] {
  return run.steps.map((s) => `${s.name}:${s.status}`);
}

/** The steps of a run waiting at the approval gate after everything before it succeeded. */
export const STEPS_AT_APPROVAL = [
  'ingest:succeeded',
  'validate:succeeded',
  'train:succeeded',
  'evaluate:succeeded',
  'approve:running',
  'deploy:pending',
];
