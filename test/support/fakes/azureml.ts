import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the Azure Machine Learning jobs API on Azure Resource Manager, speaking the
 * documented wire format (Jobs - Create Or Update / Get / Cancel, api-version 2024-04-01):
 *
 *   PUT  /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}/jobs/{id}
 *        body {properties: CommandJob}  → 201 JobBase (status NotStarted); a second PUT of a job → 200
 *   GET  …/jobs/{id}                    → 200 JobBase | 404 ErrorResponse
 *   POST …/jobs/{id}/cancel             → 202 with Location and Retry-After; the job goes
 *                                         CancelRequested, then Canceled
 *
 * Each GET advances a job one step along its script (by default NotStarted → Queued → Preparing →
 * Running → Finalizing → Completed). Errors use `{error: {code, message}}`. A bearer token is
 * required; an unknown api-version is a 400 like ARM's InvalidApiVersionParameter.
 */
export const JOB_STATUSES = [
  'NotStarted',
  'Starting',
  'Provisioning',
  'Preparing',
  'Queued',
  'Running',
  'Finalizing',
  'CancelRequested',
  'Completed',
  'Failed',
  'Canceled',
  'NotResponding',
  'Paused',
  'Unknown',
] as const;
export type AmlStatus = (typeof JOB_STATUSES)[number];

export const HAPPY_PATH: AmlStatus[] = [
  'NotStarted',
  'Queued',
  'Preparing',
  'Running',
  'Finalizing',
  'Completed',
];

export interface FakeJob {
  id: string;
  body: { properties: Record<string, unknown> };
  script: AmlStatus[];
  step: number;
  status: AmlStatus;
  createdAt: string;
}

export interface FakeAzureMl {
  url: string;
  jobs: Map<string, FakeJob>;
  requests: { method: string; path: string; apiVersion: string | null; authorization: string | undefined }[];
  /** The statuses the next created job (or an existing one) steps through, one per GET. */
  setScript(script: AmlStatus[], jobId?: string): void;
  /** The next N requests fail with this status (429 / 503 to test retries). */
  failNext(status: number, count?: number): void;
  close(): Promise<void>;
}

export interface FakeAzureMlOptions {
  acceptToken?: string;
  apiVersions?: string[];
}

const JOB_PATH =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.MachineLearningServices\/workspaces\/([^/]+)\/jobs\/([^/]+?)(\/cancel)?$/;

export async function startFakeAzureMl(options: FakeAzureMlOptions = {}): Promise<FakeAzureMl> {
  const accept = options.acceptToken ?? 'fake-arm-token';
  const versions = options.apiVersions ?? ['2024-04-01', '2024-10-01', '2025-06-01'];
  const jobs = new Map<string, FakeJob>();
  const requests: FakeAzureMl['requests'] = [];
  let nextScript: AmlStatus[] = HAPPY_PATH;
  let failures: { status: number; count: number } | undefined;
  let base = '';

  const send = (
    res: ServerResponse,
    status: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      ...(body !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}),
      'x-ms-request-id': randomUUID(),
      ...headers,
    });
    res.end(body !== undefined ? JSON.stringify(body) : undefined);
  };
  const error = (res: ServerResponse, status: number, code: string, message: string) =>
    send(res, status, { error: { code, message } }, { 'x-ms-error-code': code });

  const jobBase = (path: string, job: FakeJob) => ({
    id: path,
    name: job.id,
    type: 'Microsoft.MachineLearningServices/workspaces/jobs',
    properties: { ...job.body.properties, status: job.status },
    systemData: {
      createdAt: job.createdAt,
      createdBy: 'sluice',
      createdByType: 'ManagedIdentity',
      lastModifiedAt: job.createdAt,
      lastModifiedBy: 'sluice',
      lastModifiedByType: 'ManagedIdentity',
    },
  });

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? JSON.parse(text) : undefined;
  };

  /** Rejects a CommandJob body missing what the service requires. */
  const validate = (body: unknown): string | undefined => {
    const p = (body as { properties?: Record<string, unknown> } | undefined)?.properties;
    if (!p) return 'properties is required';
    if (p.jobType !== 'Command') return `jobType must be Command, got ${String(p.jobType)}`;
    if (typeof p.command !== 'string' || !p.command) return 'command is required';
    if (typeof p.environmentId !== 'string' || !p.environmentId) return 'environmentId is required';
    if (!p.computeId && !(p.resources as { instanceType?: string } | undefined)?.instanceType) {
      return 'computeId, or resources.instanceType for serverless compute, is required';
    }
    for (const [name, input] of Object.entries((p.inputs ?? {}) as Record<string, Record<string, unknown>>)) {
      if (input.jobInputType === 'literal') continue;
      if (!['uri_file', 'uri_folder', 'mltable'].includes(String(input.jobInputType)))
        return `inputs.${name}.jobInputType is invalid`;
      if (typeof input.uri !== 'string' || !/^(https:\/\/|azureml:\/\/)/.test(input.uri))
        return `inputs.${name}.uri must be an https or azureml URI`;
    }
    for (const [name, output] of Object.entries(
      (p.outputs ?? {}) as Record<string, Record<string, unknown>>,
    )) {
      if (
        !['uri_file', 'uri_folder', 'mltable', 'custom_model', 'mlflow_model'].includes(
          String(output.jobOutputType),
        )
      ) {
        return `outputs.${name}.jobOutputType is invalid`;
      }
    }
    const limits = p.limits as { jobLimitsType?: string; timeout?: string } | undefined;
    if (limits && (limits.jobLimitsType !== 'Command' || !/^PT\d+[SMH]$/.test(limits.timeout ?? '')))
      return 'limits is invalid';
    return undefined;
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', base);
      requests.push({
        method: req.method ?? '',
        path: url.pathname,
        apiVersion: url.searchParams.get('api-version'),
        authorization: req.headers.authorization,
      });
      if (failures && failures.count > 0) {
        failures.count--;
        return error(
          res,
          failures.status,
          failures.status === 429 ? 'TooManyRequests' : 'InternalServerError',
          'injected failure',
        );
      }
      if (req.headers.authorization !== `Bearer ${accept}`) {
        return error(
          res,
          401,
          'AuthenticationFailed',
          'Authentication failed. The Authorization header is missing or invalid.',
        );
      }
      const apiVersion = url.searchParams.get('api-version');
      if (!apiVersion)
        return error(
          res,
          400,
          'MissingApiVersionParameter',
          'The api-version query parameter (?api-version=) is required for all requests.',
        );
      if (!versions.includes(apiVersion)) {
        return error(res, 400, 'InvalidApiVersionParameter', `The api-version '${apiVersion}' is invalid.`);
      }
      const m = JOB_PATH.exec(url.pathname);
      if (!m) return error(res, 404, 'NotFound', `no route ${url.pathname}`);
      const id = decodeURIComponent(m[4]!);
      const isCancel = Boolean(m[5]);
      const path = url.pathname.replace(/\/cancel$/, '');
      const job = jobs.get(id);

      if (req.method === 'PUT' && !isCancel) {
        const body = await readBody(req);
        const problem = validate(body);
        if (problem) return error(res, 400, 'UserError', problem);
        if (job) return send(res, 200, jobBase(path, job));
        const script = nextScript;
        const created: FakeJob = {
          id,
          body: body as FakeJob['body'],
          script,
          step: 0,
          status: script[0]!,
          createdAt: new Date().toISOString(),
        };
        jobs.set(id, created);
        return send(res, 201, jobBase(path, created));
      }
      if (req.method === 'GET' && !isCancel) {
        if (!job) return error(res, 404, 'UserError', `Could not find job with name ${id}`);
        const answer = jobBase(path, job);
        if (job.step < job.script.length - 1) {
          job.step++;
          job.status = job.script[job.step]!;
        } else if (job.status === 'CancelRequested') {
          job.status = 'Canceled';
        }
        return send(res, 200, answer);
      }
      if (req.method === 'POST' && isCancel) {
        if (!job) return error(res, 404, 'UserError', `Could not find job with name ${id}`);
        if (!['Completed', 'Failed', 'Canceled'].includes(job.status)) {
          job.status = 'CancelRequested';
          job.script = ['CancelRequested', 'Canceled'];
          job.step = 0;
        }
        return send(res, 202, undefined, {
          location: `${base}/subscriptions/${m[1]}/providers/Microsoft.MachineLearningServices/locations/westeurope/mfeOperationResults/jc:${id}?api-version=${apiVersion}`,
          'retry-after': '5',
        });
      }
      return error(res, 405, 'MethodNotAllowed', `${req.method} is not supported here`);
    })().catch((err: unknown) => error(res, 500, 'InternalServerError', String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    jobs,
    requests,
    setScript: (script, jobId) => {
      if (jobId) {
        const job = jobs.get(jobId);
        if (!job) throw new Error(`no job ${jobId}`);
        job.script = script;
        job.step = 0;
        job.status = script[0]!;
      } else {
        nextScript = script;
      }
    },
    failNext: (status, count = 1) => {
      failures = { status, count };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
