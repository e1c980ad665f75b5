import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

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
 *   PUT  …/workspaces/{ws}/codes/{name}/versions/{v}         body {properties: {codeUri, isAnonymous}} → 201 | 200
 *   GET  …/workspaces/{ws}/codes/{name}[/versions/{v}]       → 200 (the container has latestVersion) | 404
 *   PUT  …/workspaces/{ws}/environments/{name}/versions/{v}  body {properties: {image, osType}} → 201 | 200
 *   GET  …/workspaces/{ws}/environments/{name}[/versions/{v}]
 *   GET  …/workspaces/{ws}/datastores/{name}                 → 200 AzureBlob datastore {accountName, containerName}
 *                                                            (workspaceblobstore, and `datastores` given to the fake)
 *   PUT  …/workspaces/{ws}/datastores/{name}                 body {properties: AzureBlob with credentials
 *                                                            {credentialsType: Sas, secrets: {secretsType: Sas,
 *                                                            sasToken}}} → 201 | 200 (Sluice's per-job output)
 *   DELETE …/workspaces/{ws}/datastores/{name}               → 200 | 204
 *   PUT  /blob/{account}/{container}/{path}                  the workspace storage's Put Blob (x-ms-blob-type
 *                                                            BlockBlob, a bearer token) → 201
 *   GET|HEAD /blob/{account}/{container}/{path}              Get Blob (x-ms-range) / its properties; a job's log is
 *                                                            azureml/ExperimentRun/dcid.{id}/user_logs/std_log.txt
 *
 * Each GET advances a job one step along its script (by default NotStarted → Queued → Preparing →
 * Running → Finalizing → Completed). Errors use `{error: {code, message}}`. A bearer token is
 * required; an unknown api-version is a 400 like ARM's InvalidApiVersionParameter. A command that
 * binds an input or output the job does not define is a 400, as Azure ML refuses it.
 *
 * With `execute`, a job really runs when it leaves Running: its code version's files (uploaded to
 * the fake's Blob) are its working folder, its `uri_file` inputs are read through `execute.read`
 * into local files, `${{inputs.*}}` / `${{outputs.*}}` become those paths, the command runs under
 * `/bin/sh -c` with the job's environmentVariables (on this machine's programs: the job's
 * environment image is not pulled), and its `uri_folder` outputs are written back through
 * `execute.write` — except those on a datastore with SAS credentials (created through the API), which
 * are uploaded with plain Put Blob requests carrying only that SAS to `blobAccountUrl`, as Azure ML's
 * data runtime does: the storage emulator, not the fake, decides what the SAS may write. A non-zero
 * exit makes the job Failed; `log` keeps its output.
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
  /** With `execute`: the command's output and exit code once it ran. */
  log?: string;
  exitCode?: number;
}

export interface FakeAsset {
  path: string;
  properties: Record<string, unknown>;
}

export interface FakeAzureMl {
  url: string;
  jobs: Map<string, FakeJob>;
  /** Code and environment versions by ARM path. */
  assets: Map<string, FakeAsset>;
  /** Datastores created through the API, by name (their properties, secrets included). */
  datastores: Map<string, Record<string, unknown>>;
  /** The workspace storage's blobs, by `account/container/path`. */
  blobs: Map<string, Buffer>;
  requests: { method: string; path: string; apiVersion: string | null; authorization: string | undefined }[];
  /** The statuses the next created job (or an existing one) steps through, one per GET. */
  setScript(script: AmlStatus[], jobId?: string): void;
  /** The next N requests fail with this status (429 / 503 to test retries), with a Retry-After if given. */
  failNext(status: number, count?: number, retryAfter?: string): void;
  /** Backdates a job's creation (systemData.createdAt), for jobs stuck in the queue. */
  setCreatedAt(jobId: string, at: string): void;
  /** Blob endpoint of the workspace storage (for the backend's workspaceStorageEndpoint). */
  storageUrl: string;
  close(): Promise<void>;
}

export interface FakeAzureMlOptions {
  acceptToken?: string;
  apiVersions?: string[];
  /** Runs jobs for real (see above); the test's artifact store reads inputs and writes outputs. */
  execute?: {
    read(uri: string): Promise<Uint8Array>;
    write(uri: string, bytes: Uint8Array): Promise<void>;
    /** The blob URIs under a folder URI (for `uri_folder` inputs). */
    list?(folderUri: string): Promise<string[]>;
  };
  /**
   * Other datastores of the workspace: name → the Blob URL of its container (on the test's
   * artifact store), so `azureml://datastores/<name>/paths/<path>` inputs and outputs resolve.
   */
  datastores?: Record<string, string>;
  /**
   * The Blob account URL SAS datastores' uploads go to (e.g. Azurite's
   * http://127.0.0.1:10000/devstoreaccount1); default https://<accountName>.blob.<endpoint>.
   */
  blobAccountUrl?: string;
  /** The workspace storage account and container (the workspaceblobstore datastore). */
  storageAccount?: string;
  storageContainer?: string;
}

const WORKSPACE =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.MachineLearningServices\/workspaces\/([^/]+)/;
const JOB_PATH = new RegExp(`${WORKSPACE.source}\\/jobs\\/([^/]+?)(\\/cancel)?$`);
const ASSET_PATH = new RegExp(
  `${WORKSPACE.source}\\/(codes|environments)\\/([^/]+)(?:\\/versions\\/([^/]+))?$`,
);
const DATASTORE_PATH = new RegExp(`${WORKSPACE.source}\\/datastores\\/([^/]+)$`);
const BINDING = /\$\{\{(inputs|outputs)\.([A-Za-z0-9_]+)\}\}/g;

export async function startFakeAzureMl(options: FakeAzureMlOptions = {}): Promise<FakeAzureMl> {
  const accept = options.acceptToken ?? 'fake-arm-token';
  const versions = options.apiVersions ?? ['2024-04-01', '2024-10-01', '2025-06-01'];
  const jobs = new Map<string, FakeJob>();
  const assets = new Map<string, FakeAsset>();
  const created = new Map<string, Record<string, unknown>>();
  const blobs = new Map<string, Buffer>();
  const account = options.storageAccount ?? 'stmlfake';
  const storageContainer = options.storageContainer ?? 'azureml-blobstore-0000';
  const requests: FakeAzureMl['requests'] = [];
  let nextScript: AmlStatus[] = HAPPY_PATH;
  let failures: { status: number; count: number; retryAfter?: string } | undefined;
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
  const error = (
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ) => send(res, status, { error: { code, message } }, { 'x-ms-error-code': code, ...headers });

  const jobBase = (path: string, job: FakeJob) => ({
    id: path,
    name: job.id,
    type: 'Microsoft.MachineLearningServices/workspaces/jobs',
    properties: {
      ...job.body.properties,
      status: job.status,
      services: {
        Studio: {
          jobServiceType: 'Studio',
          endpoint: `https://ml.azure.com/runs/${job.id}?wsid=${encodeURIComponent(path.replace(/\/jobs\/.*$/, ''))}`,
        },
      },
    },
    systemData: {
      createdAt: job.createdAt,
      createdBy: 'sluice',
      createdByType: 'ManagedIdentity',
      lastModifiedAt: job.createdAt,
      lastModifiedBy: 'sluice',
      lastModifiedByType: 'ManagedIdentity',
    },
  });

  const readRaw = async (req: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const text = (await readRaw(req)).toString('utf8');
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
    const inputs = (p.inputs ?? {}) as Record<string, Record<string, unknown>>;
    const outputs = (p.outputs ?? {}) as Record<string, Record<string, unknown>>;
    for (const [name, input] of Object.entries(inputs)) {
      if (input.jobInputType === 'literal') continue;
      if (!['uri_file', 'uri_folder', 'mltable'].includes(String(input.jobInputType)))
        return `inputs.${name}.jobInputType is invalid`;
      // https or azureml in Azure; the tests' Azurite answers plain http on loopback.
      if (
        typeof input.uri !== 'string' ||
        !/^(https:\/\/|azureml:\/\/|http:\/\/127\.0\.0\.1[:/])/.test(input.uri)
      )
        return `inputs.${name}.uri must be an https or azureml URI`;
    }
    for (const [name, output] of Object.entries(outputs)) {
      if (
        !['uri_file', 'uri_folder', 'mltable', 'custom_model', 'mlflow_model'].includes(
          String(output.jobOutputType),
        )
      ) {
        return `outputs.${name}.jobOutputType is invalid`;
      }
      if (output.mode !== undefined && !['ReadWriteMount', 'Upload', 'Direct'].includes(String(output.mode)))
        return `outputs.${name}.mode is invalid`;
    }
    for (const io of [...Object.values(inputs), ...Object.values(outputs)]) {
      const ds = /^azureml:\/\/datastores\/([^/]+)\/paths\//.exec(String(io.uri ?? ''));
      if (
        ds &&
        !Object.hasOwn(options.datastores ?? {}, decodeURIComponent(ds[1]!)) &&
        !created.has(decodeURIComponent(ds[1]!))
      )
        return `datastore ${ds[1]} does not exist in the workspace`;
    }
    for (const m of p.command.matchAll(BINDING)) {
      const known = m[1] === 'inputs' ? inputs : outputs;
      if (!Object.hasOwn(known, m[2]!)) return `the command binds ${m[0]}, which the job does not define`;
    }
    const env = p.environmentVariables as Record<string, unknown> | undefined;
    if (env && Object.values(env).some((v) => typeof v !== 'string'))
      return 'environmentVariables values must be strings';
    const limits = p.limits as { jobLimitsType?: string; timeout?: string } | undefined;
    if (limits && (limits.jobLimitsType !== 'Command' || !/^PT\d+[SMH]$/.test(limits.timeout ?? '')))
      return 'limits is invalid';
    if (typeof p.codeId === 'string' && p.codeId.startsWith('/') && !assets.has(p.codeId))
      return `code ${p.codeId} does not exist`;
    if (p.environmentId.startsWith('/') && !assets.has(p.environmentId))
      return `environment ${p.environmentId} does not exist`;
    return undefined;
  };

  /** Runs a job's command as Azure ML would (see the file's comment); true when it exited 0. */
  const execute = async (job: FakeJob): Promise<boolean> => {
    const run = options.execute!;
    const p = job.body.properties as {
      command: string;
      codeId?: string;
      inputs?: Record<string, { jobInputType: string; uri: string }>;
      outputs?: Record<string, { jobOutputType: string; uri: string }>;
      environmentVariables?: Record<string, string>;
    };
    const work = await mkdtemp(path.join(tmpdir(), 'fake-azureml-job-'));
    try {
      const codeDir = path.join(work, 'code');
      await mkdir(codeDir, { recursive: true });
      const code = p.codeId ? assets.get(p.codeId) : undefined;
      if (code) {
        const prefix = String(code.properties.codeUri)
          .replace(/^.*?\/blob\//, '')
          .replace(/\/?$/, '/');
        for (const [key, bytes] of blobs) {
          if (!key.startsWith(prefix)) continue;
          const target = path.join(codeDir, ...key.slice(prefix.length).split('/'));
          await mkdir(path.dirname(target), { recursive: true });
          await writeFile(target, bytes);
        }
      }
      /** A SAS datastore's folder: its container URL and the SAS that uploads carry. */
      const sasFolder = (uri: string): { base: string; sas: string } | undefined => {
        const m = /^azureml:\/\/datastores\/([^/]+)\/paths\/(.*)$/.exec(uri);
        const props = m ? created.get(decodeURIComponent(m[1]!)) : undefined;
        if (!m || !props) return undefined;
        const secrets = (props.credentials as { secrets?: { sasToken?: string } } | undefined)?.secrets;
        const accountUrl =
          options.blobAccountUrl ??
          `${String(props.protocol ?? 'https')}://${String(props.accountName)}.blob.${String(props.endpoint)}`;
        return {
          base: `${accountUrl.replace(/\/$/, '')}/${String(props.containerName)}/${m[2]}`,
          sas: String(secrets?.sasToken ?? ''),
        };
      };
      const resolve = (uri: string) => {
        const m = /^azureml:\/\/datastores\/([^/]+)\/paths\/(.*)$/.exec(uri);
        return m ? `${options.datastores![decodeURIComponent(m[1]!)]!.replace(/\/$/, '')}/${m[2]}` : uri;
      };
      /** Put Blob with the SAS alone; a refusal fails the job as Azure ML's upload would. */
      const putWithSas = async (folder: { base: string; sas: string }, rel: string, bytes: Buffer) => {
        const url = `${folder.base.replace(/\/?$/, '/')}${rel.split('/').map(encodeURIComponent).join('/')}?${folder.sas}`;
        const res = await fetch(url, {
          method: 'PUT',
          headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-version': '2021-12-02' },
          body: bytes,
        });
        if (res.status !== 201)
          throw new Error(`upload of ${rel} refused: ${res.status} ${(await res.text()).slice(0, 300)}`);
      };
      const paths: Record<string, string> = {};
      for (const [name, input] of Object.entries(p.inputs ?? {})) {
        const dir = path.join(work, 'inputs', name);
        await mkdir(dir, { recursive: true });
        if (input.jobInputType === 'uri_folder') {
          // Downloaded as a folder: every blob under the URI, at its relative path.
          const base = resolve(input.uri).replace(/\/?$/, '/');
          for (const uri of run.list ? await run.list(base) : []) {
            const target = path.join(dir, ...decodeURIComponent(uri.slice(base.length)).split('/'));
            await mkdir(path.dirname(target), { recursive: true });
            await writeFile(target, await run.read(uri));
          }
          paths[`inputs.${name}`] = dir;
          continue;
        }
        const file = path.join(dir, decodeURIComponent(new URL(input.uri).pathname.split('/').pop()!));
        await writeFile(file, await run.read(resolve(input.uri)));
        paths[`inputs.${name}`] = file;
      }
      for (const name of Object.keys(p.outputs ?? {})) {
        paths[`outputs.${name}`] = path.join(work, 'outputs', name);
        await mkdir(paths[`outputs.${name}`]!, { recursive: true });
      }
      const command = p.command.replace(
        BINDING,
        (_m, kind: string, name: string) => paths[`${kind}.${name}`]!,
      );
      const { code: exitCode, output } = await new Promise<{ code: number; output: string }>((resolve) => {
        const child = spawn('/bin/sh', ['-c', command], {
          cwd: codeDir,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, ...p.environmentVariables },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        child.stdout.on('data', (c: Buffer) => out.push(c));
        child.stderr.on('data', (c: Buffer) => out.push(c));
        child.on('close', (c) => resolve({ code: c ?? 1, output: Buffer.concat(out).toString('utf8') }));
      });
      job.log = output;
      job.exitCode = exitCode;
      // Azure ML keeps the job's stdout and stderr in the workspace's artifact store.
      blobs.set(`${account}/azureml/ExperimentRun/dcid.${job.id}/user_logs/std_log.txt`, Buffer.from(output));
      if (exitCode !== 0) return false;
      for (const [name, output] of Object.entries(p.outputs ?? {})) {
        const root = paths[`outputs.${name}`]!;
        const sas = sasFolder(output.uri);
        const walk = async (dir: string, rel: string): Promise<void> => {
          for (const e of await readdir(dir, { withFileTypes: true })) {
            const r = rel ? `${rel}/${e.name}` : e.name;
            if (e.isDirectory()) await walk(path.join(dir, e.name), r);
            else if (sas) await putWithSas(sas, r, await readFile(path.join(dir, e.name)));
            else
              await run.write(
                `${resolve(output.uri).replace(/\/?$/, '/')}${r}`,
                await readFile(path.join(dir, e.name)),
              );
          }
        };
        await walk(root, '');
      }
      return true;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  };

  /** One GET's step along the job's script; leaving Running runs the job when `execute` is on. */
  const advance = async (job: FakeJob) => {
    if (job.step < job.script.length - 1) {
      if (options.execute && job.status === 'Running' && job.exitCode === undefined) {
        if (!(await execute(job))) {
          job.script = [...job.script.slice(0, job.step + 1), 'Failed'];
        }
      }
      job.step++;
      job.status = job.script[job.step]!;
    } else if (job.status === 'CancelRequested') {
      job.status = 'Canceled';
    }
  };

  const assetBody = (path: string, asset: FakeAsset, kind: string) => ({
    id: path,
    name: path.split('/').pop(),
    type: `Microsoft.MachineLearningServices/workspaces/${kind}/versions`,
    properties: asset.properties,
  });

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
          failures.retryAfter ? { 'retry-after': failures.retryAfter } : {},
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
      if (url.pathname.startsWith('/blob/')) {
        // The workspace storage's Put Blob (Blob REST API).
        const key = decodeURIComponent(url.pathname.slice('/blob/'.length));
        if (req.method === 'GET' || req.method === 'HEAD') {
          // Get Blob / Get Blob Properties, with x-ms-range.
          const blob = blobs.get(key);
          if (!blob) return error(res, 404, 'BlobNotFound', 'The specified blob does not exist.');
          const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers['x-ms-range'] ?? ''));
          const body = range ? blob.subarray(Number(range[1]), Number(range[2]) + 1) : blob;
          res.writeHead(range ? 206 : 200, {
            'content-length': String(req.method === 'HEAD' ? blob.length : body.length),
            'content-type': 'application/octet-stream',
          });
          return res.end(req.method === 'HEAD' ? undefined : body);
        }
        if (req.method !== 'PUT') return error(res, 405, 'UnsupportedHttpVerb', 'only Put Blob here');
        if (req.headers['x-ms-blob-type'] !== 'BlockBlob')
          return error(res, 400, 'MissingRequiredHeader', 'x-ms-blob-type is required');
        if (!req.headers['x-ms-version'])
          return error(res, 400, 'MissingRequiredHeader', 'x-ms-version is required');
        blobs.set(key, await readRaw(req));
        return send(res, 201, undefined, { etag: `"${randomUUID()}"` });
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
      const ds = DATASTORE_PATH.exec(url.pathname);
      if (ds && req.method === 'PUT') {
        const body = (await readBody(req)) as { properties?: Record<string, unknown> } | undefined;
        const props = body?.properties;
        const creds = props?.credentials as
          { credentialsType?: string; secrets?: { secretsType?: string; sasToken?: string } } | undefined;
        if (!props || props.datastoreType !== 'AzureBlob')
          return error(res, 400, 'UserError', 'properties.datastoreType must be AzureBlob');
        if (typeof props.accountName !== 'string' || typeof props.containerName !== 'string')
          return error(res, 400, 'UserError', 'accountName and containerName are required');
        if (
          creds?.credentialsType !== 'Sas' ||
          creds.secrets?.secretsType !== 'Sas' ||
          typeof creds.secrets.sasToken !== 'string'
        )
          return error(
            res,
            400,
            'UserError',
            'credentials must be {credentialsType: Sas, secrets: {secretsType: Sas, sasToken}}',
          );
        const name = decodeURIComponent(ds[4]!);
        const existed = created.has(name);
        created.set(name, props);
        const { credentials: _secret, ...shown } = props;
        return send(res, existed ? 200 : 201, {
          id: url.pathname,
          name,
          type: 'Microsoft.MachineLearningServices/workspaces/datastores',
          properties: { ...shown, credentials: { credentialsType: 'Sas' } },
        });
      }
      if (ds && req.method === 'DELETE') {
        const existed = created.delete(decodeURIComponent(ds[4]!));
        return send(res, existed ? 200 : 204);
      }
      if (ds && req.method === 'GET') {
        const other = options.datastores?.[decodeURIComponent(ds[4]!)];
        if (other) {
          const u = new URL(other);
          return send(res, 200, {
            id: url.pathname,
            name: ds[4],
            type: 'Microsoft.MachineLearningServices/workspaces/datastores',
            properties: {
              datastoreType: 'AzureBlob',
              accountName: u.pathname.split('/')[1],
              containerName: u.pathname.split('/')[2],
              endpoint: 'core.windows.net',
              protocol: 'https',
              credentials: { credentialsType: 'None' },
              serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity',
            },
          });
        }
        if (ds[4] !== 'workspaceblobstore' && ds[4] !== 'workspaceartifactstore')
          return error(res, 404, 'UserError', `datastore ${ds[4]} not found`);
        return send(res, 200, {
          id: url.pathname,
          name: 'workspaceblobstore',
          type: 'Microsoft.MachineLearningServices/workspaces/datastores',
          properties: {
            datastoreType: 'AzureBlob',
            accountName: account,
            containerName: ds[4] === 'workspaceartifactstore' ? 'azureml' : storageContainer,
            endpoint: 'core.windows.net',
            protocol: 'https',
            isDefault: true,
            credentials: { credentialsType: 'None' },
          },
        });
      }
      const a = ASSET_PATH.exec(url.pathname);
      if (a) {
        const [, , , , kind, name, version] = a;
        if (req.method === 'PUT' && version) {
          const body = (await readBody(req)) as { properties?: Record<string, unknown> } | undefined;
          const props = body?.properties;
          if (!props) return error(res, 400, 'UserError', 'properties is required');
          if (kind === 'codes' && typeof props.codeUri !== 'string')
            return error(res, 400, 'UserError', 'codeUri is required');
          if (kind === 'environments' && typeof props.image !== 'string' && !props.build)
            return error(res, 400, 'UserError', 'image or build is required');
          const existing = assets.get(url.pathname);
          if (existing) {
            if (JSON.stringify(existing.properties) !== JSON.stringify(props))
              return error(
                res,
                409,
                'UserError',
                `${kind} ${name}:${version} already exists with other content`,
              );
            return send(res, 200, assetBody(url.pathname, existing, kind!));
          }
          const asset = { path: url.pathname, properties: props };
          assets.set(url.pathname, asset);
          return send(res, 201, assetBody(url.pathname, asset, kind!));
        }
        if (req.method === 'GET' && version) {
          const asset = assets.get(url.pathname);
          if (!asset) return error(res, 404, 'UserError', `${kind} ${name}:${version} not found`);
          return send(res, 200, assetBody(url.pathname, asset, kind!));
        }
        if (req.method === 'GET') {
          const found = [...assets.keys()].filter((k) => k.startsWith(`${url.pathname}/versions/`));
          if (!found.length) return error(res, 404, 'UserError', `${kind} ${name} not found`);
          return send(res, 200, {
            id: url.pathname,
            name,
            properties: { latestVersion: found.at(-1)!.split('/').pop() },
          });
        }
        return error(res, 405, 'MethodNotAllowed', `${req.method} is not supported here`);
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
        await advance(job);
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
    storageUrl: `${base}/blob/${account}`,
    jobs,
    assets,
    datastores: created,
    blobs,
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
    failNext: (status, count = 1, retryAfter) => {
      failures = { status, count, ...(retryAfter !== undefined ? { retryAfter } : {}) };
    },
    setCreatedAt: (jobId, at) => {
      const job = jobs.get(jobId);
      if (!job) throw new Error(`no job ${jobId}`);
      job.createdAt = at;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
