import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { PIPELINE_ORCHESTRATOR } from '../lib/contracts/pipeline';
import { requesterOf } from '../lib/approval/principal';
import { ValidationError } from '../lib/errors';
import { problem, zodProblem } from '../lib/http/problem';
import resources from '../lib/resources.json';
import { sniffBinary } from '../lib/data/reading/input';
import { newRunId } from '../lib/runs/ids';
import { launchRun } from '../lib/runs/launch';
import type { RunSource } from '../lib/contracts/runDocument';
import type { RunCandidate } from '../lib/contracts/mlflowCandidate';
import { resolveMlflowCandidate } from '../lib/mlflow/promote';
import type { Services } from '../lib/services';
import type { StoredBlob } from '../lib/storage/blob';
import { withServices } from '../app/services';
import { parseDatasetBlob } from '../lib/storage/datasetSource';
import { mediaType, readJsonBody, withProblems } from './support/http';
import { UploadSlots } from './support/uploads';

const uploadTypes: Record<string, 'csv' | 'jsonl' | 'parquet'> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/x-jsonlines': 'jsonl',
  'application/vnd.apache.parquet': 'parquet',
  'application/x-parquet': 'parquet',
};

const blobStartSchema = z
  .object({
    source: z.object({ blob: z.string().min(1).max(1100) }).strict(),
    /** A model trained elsewhere to promote instead of training (docs/mlflow.md). */
    candidate: z
      .object({ mlflow: z.string().min(1).max(1_000) })
      .strict()
      .optional(),
    // The requester is who the platform says called, never a body field: refused (not ignored) so
    // that nobody believes it works.
    requestedBy: z
      .unknown()
      .refine((v) => v === undefined, {
        message:
          'the requester is the signed-in principal (App Service Authentication), never a body field; remove requestedBy',
      })
      .optional(),
  })
  .strict();

/**
 * Resolves a promoted run's MLflow model URI before anything is stored: an unknown model, version,
 * alias or run is a 400 naming it now, not a failure later in the run.
 */
async function resolveCandidate(
  deps: Pick<Services, 'mlflowModels'>,
  uri: string | undefined,
): Promise<RunCandidate | undefined> {
  if (uri === undefined) return undefined;
  if (!deps.mlflowModels)
    throw new ValidationError(
      'mlflow_not_configured',
      'promoting an MLflow model needs MLFLOW_TRACKING_URI (the MLflow server it is registered on)',
      { field: 'candidate.mlflow' },
    );
  try {
    return { mlflow: await resolveMlflowCandidate(deps.mlflowModels, uri) };
  } catch (err) {
    // MLflow refused Sluice's own credentials: not the caller's mistake, a bad gateway.
    const e = err as ValidationError;
    if (e instanceof ValidationError && e.status === 502) throw new MlflowRefusedSluice(e.code, e.message);
    throw err;
  }
}

class MlflowRefusedSluice extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Uploads streaming on this instance, at most INGEST_MAX_CONCURRENT_UPLOADS. */
const uploadSlots = new UploadSlots();
const UPLOAD_RETRY_AFTER_SECONDS = 5;

/**
 * Streams an upload to Blob, content-addressed, as it arrives (the body is a stream: functions/setup.ts).
 * The first bytes are sniffed before anything is stored: an image, a PDF or other binary content
 * sent as CSV or JSON Lines is refused at once, with no blob and no run.
 */
async function storeUpload(
  deps: Pick<Services, 'artifacts'>,
  pipeline: string,
  type: string,
  body: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<StoredBlob> {
  const it = body[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  const head = first.done ? undefined : first.value;
  if (head && uploadTypes[type] !== 'parquet') {
    const binary = sniffBinary(head);
    if (binary) {
      await it.return?.();
      throw new ValidationError(
        'binary_upload',
        `the upload is ${binary}, sent as ${type}; send the dataset as UTF-8 CSV or JSON Lines (or Parquet)`,
        { status: 415, field: '(body)' },
      );
    }
  }
  async function* whole(): AsyncGenerator<Uint8Array> {
    if (head) yield head;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  try {
    return await deps.artifacts.putContentAddressed(resources.blobContainers.datasets, whole(), {
      prefix: `uploads/${pipeline}`,
      contentType: type,
      maxBytes: limit,
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'BLOB_TOO_LARGE') {
      throw new ValidationError(
        'upload_too_large',
        `the upload is over the limit of ${limit} bytes (INGEST_MAX_BYTES)`,
        { status: 413, field: '(body)' },
      );
    }
    throw err;
  }
}

/**
 * `POST /api/pipelines/{name}/runs`: starts a run on an uploaded CSV / JSON Lines body, or on a blob
 * named in a JSON body `{ "source": { "blob": "container/path" } }`. The upload is stored
 * content-addressed before anything else, the run document is created, then the orchestration
 * starts with the run id as its instance id. With `"candidate": {"mlflow": "<model URI>"}` (or, for
 * an upload, `?mlflow=<model URI>`) the run promotes a model trained elsewhere: resolved here, then
 * imported by the train step instead of training (docs/mlflow.md). Answers 202 with the run id, the run URL and the
 * Durable status URLs.
 */
export const startRun =
  (deps: Pick<Services, 'config' | 'runs' | 'pipelines' | 'artifacts' | 'mlflowModels'>) =>
  async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      return await start(deps, request, context);
    } catch (err) {
      if (err instanceof MlflowRefusedSluice)
        return problem(502, err.code, err.message, { field: 'candidate.mlflow' });
      throw err;
    }
  };

async function start(
  deps: Pick<Services, 'config' | 'runs' | 'pipelines' | 'artifacts' | 'mlflowModels'>,
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const pipeline = request.params.name ?? '';
  const definition = await deps.pipelines.get(pipeline);
  if (!definition)
    return problem(404, 'pipeline_not_found', `no pipeline named ${pipeline}`, { field: 'name' });

  const type = mediaType(request);
  const now = new Date();
  const runId = newRunId(pipeline, now);
  let source: RunSource;
  let candidate: RunCandidate | undefined;
  const requestedBy = requesterOf((name) => request.headers.get(name));

  if (type === 'application/json') {
    const parsed = blobStartSchema.safeParse(await readJsonBody(request, 64 * 1024));
    if (!parsed.success) return zodProblem(parsed.error);
    // One place for the candidate: a JSON body carries it, so a query one too would be ambiguous.
    if (request.query.get('mlflow') !== null)
      return problem(
        400,
        'candidate_in_query',
        'with a JSON body, name the MLflow model in the body ("candidate": {"mlflow": "…"}), not in ?mlflow=',
        { field: 'mlflow' },
      );
    candidate = await resolveCandidate(deps, parsed.data.candidate?.mlflow);
    const location = parseDatasetBlob(parsed.data.source.blob, 'source.blob');
    const props = await deps.artifacts.properties(location);
    if (!props) {
      return problem(404, 'source_not_found', `blob ${parsed.data.source.blob} does not exist`, {
        field: 'source.blob',
      });
    }
    source = { kind: 'blob', uri: deps.artifacts.uri(location) };
  } else if (uploadTypes[type]) {
    const limit = deps.config.INGEST_MAX_BYTES;
    const declared = Number(request.headers.get('content-length') ?? '0');
    if (declared > limit) {
      return problem(
        413,
        'upload_too_large',
        `the upload is ${declared} bytes; the limit is ${limit} (INGEST_MAX_BYTES)`,
        {
          field: 'content-length',
        },
      );
    }
    if (!request.body) throw new ValidationError('empty_body', 'the upload is empty', { field: '(body)' });
    // With an upload the candidate is a query parameter (`?mlflow=models:/churn/7`), resolved
    // before a byte is stored.
    const mlflowUri = request.query.get('mlflow');
    candidate = await resolveCandidate(deps, mlflowUri === null ? undefined : mlflowUri);
    const release = uploadSlots.tryTake(deps.config.INGEST_MAX_CONCURRENT_UPLOADS);
    if (!release) {
      const busy = problem(
        503,
        'too_many_uploads',
        `${deps.config.INGEST_MAX_CONCURRENT_UPLOADS} uploads are already streaming to storage on this instance (INGEST_MAX_CONCURRENT_UPLOADS); retry shortly`,
      );
      return { ...busy, headers: { ...busy.headers, 'retry-after': String(UPLOAD_RETRY_AFTER_SECONDS) } };
    }
    let stored;
    try {
      stored = await storeUpload(deps, pipeline, type, request.body as AsyncIterable<Uint8Array>, limit);
    } finally {
      release();
    }
    if (stored.size === 0)
      throw new ValidationError('empty_body', 'the upload is empty', { field: '(body)' });
    source = {
      kind: 'upload',
      uri: stored.uri,
      sha256: stored.sha256,
      bytes: stored.size,
      format: uploadTypes[type],
    };
  } else {
    return problem(
      415,
      'unsupported_media_type',
      `send CSV (text/csv), JSON Lines (application/x-ndjson), Parquet (application/vnd.apache.parquet) or a JSON body naming a blob; got "${type || 'none'}"`,
      { field: 'content-type' },
    );
  }

  const client = df.getClient(context);
  await launchRun(
    deps,
    async (instanceId, input) => void (await client.startNew(PIPELINE_ORCHESTRATOR, { instanceId, input })),
    {
      runId,
      pipeline,
      pipelineVersion: definition.version,
      source,
      trigger: { kind: request.headers.get('x-sluice-client') === 'cli' ? 'cli' : 'http', by: requestedBy },
      now,
      ...(candidate ? { candidate } : {}),
    },
  );
  context.log(`run ${runId} started on pipeline ${pipeline} v${definition.version}`);
  const durable = client.createHttpManagementPayload(runId);
  // Links from the configured public origin: the request's Host header is the caller's to choose.
  const origin = deps.config.PUBLIC_BASE_URL;
  return {
    status: 202,
    headers: { location: `${origin}/api/runs/${runId}`, 'retry-after': '2' },
    jsonBody: {
      runId,
      pipeline,
      pipelineVersion: definition.version,
      runUrl: `${origin}/api/runs/${runId}`,
      source,
      ...(candidate ? { candidate } : {}),
      durable,
    },
  };
}

app.http('startRun', {
  route: 'api/pipelines/{name}/runs',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(withServices(startRun)),
});
