import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { datasetContractSchema, type DatasetContract } from '../lib/contracts/datasetContract';
import { getServices } from '../app/services';
import type { DataDeps } from '../lib/data/datasets';
import { DataFormatError } from '../lib/data/errors';
import type { DatasetFormat } from '../lib/data/reading/readDataset';
import { readDataset } from '../lib/data/reading/readDataset';
import { resolveReference } from '../lib/data/profiling/reference';
import { encodeColumnar } from '../lib/data/reading/columnar';
import { sharedConcat, warmValidationWorker } from '../lib/data/checking/offThread';
import { validateStored } from '../lib/data/checking/validateStored';
import { ValidationError } from '../lib/errors';
import { problem, zodProblem } from '../lib/http/problem';
import { dataDeps } from '../lib/services';
import { withProblems } from './support/http';

/** An inline contract travels in this header (base64url JSON) when no pipeline is named. */
export const CONTRACT_HEADER = 'x-sluice-contract';

function formatOf(request: HttpRequest): DatasetFormat | undefined {
  const q = request.query.get('format');
  if (q === 'csv' || q === 'jsonl' || q === 'parquet') return q;
  if (q !== null)
    throw new ValidationError('invalid_format', `format must be csv, jsonl or parquet, got "${q}"`, {
      field: 'format',
    });
  const type = (request.headers.get('content-type') ?? '').toLowerCase();
  if (type.includes('ndjson') || type.includes('jsonl') || type.includes('json-seq')) return 'jsonl';
  if (type.includes('csv')) return 'csv';
  if (type.includes('parquet')) return 'parquet';
  return undefined; // sniffed from the first bytes (PAR1 is Parquet)
}

/** Rejects an upload over the size cap from its declared length, before a byte of the body is read. */
export function checkDeclaredSize(request: HttpRequest, maxBytes: number): void {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    throw new DataFormatError(
      'INPUT_TOO_LARGE',
      `Content-Length ${declared} is over the limit of ${maxBytes} bytes`,
    );
  }
}

async function contractFrom(
  request: HttpRequest,
  deps: DataDeps,
): Promise<{ contract: DatasetContract; pipeline?: string } | HttpResponseInit> {
  const pipeline = request.query.get('pipeline');
  if (pipeline) {
    const v = request.query.get('version');
    const version = v === null ? undefined : Number(v);
    if (version !== undefined && (!Number.isInteger(version) || version < 1)) {
      return problem(400, 'invalid_version', `version must be a positive integer, got "${v}"`, {
        field: 'version',
      });
    }
    const contract = await deps.contractOf(pipeline, version);
    if (!contract)
      return problem(
        404,
        'pipeline_not_found',
        `no pipeline named ${pipeline}${version ? ` version ${version}` : ''}`,
        { field: 'pipeline' },
      );
    return { contract, pipeline };
  }
  const header = request.headers.get(CONTRACT_HEADER);
  if (!header) {
    return problem(
      400,
      'contract_required',
      `name a pipeline (?pipeline=NAME) or send a contract in the ${CONTRACT_HEADER} header`,
      { field: 'pipeline' },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  } catch {
    return problem(400, 'invalid_contract', `${CONTRACT_HEADER} must be base64url-encoded JSON`, {
      field: CONTRACT_HEADER,
    });
  }
  const parsed = datasetContractSchema.safeParse(json);
  if (!parsed.success) return zodProblem(parsed.error, 'invalid_contract', 'contract');
  return { contract: parsed.data };
}

/**
 * `POST /api/datasets/validate?pipeline=NAME[&version=N][&format=csv|jsonl|parquet]` with a CSV, JSON
 * Lines (gzip accepted) or Parquet body: the validation report a run would produce — contract, quality, drift
 * against the production reference, schema diff — without storing the upload or starting a run (the
 * reference's profile is cached as a validation in a run would cache it).
 */
export function validateDatasetHandler(getDeps: () => Promise<DataDeps>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const deps = await getDeps();
    checkDeclaredSize(request, deps.limits.maxBytes);
    const found = await contractFrom(request, deps);
    if (!('contract' in found)) return found;
    const { contract, pipeline } = found;
    if (!request.body) throw new DataFormatError('INPUT_EMPTY', 'the request has no body');
    const declared = Number(request.headers.get('content-length') ?? NaN);
    const format = formatOf(request);
    // Its start-up overlaps reading the upload (with a helper thread too for a large one).
    warmValidationWorker(Number.isFinite(declared) ? { bytes: declared } : {});
    const parsed = await readDataset(request.body as AsyncIterable<Uint8Array>, {
      contract,
      limits: deps.limits,
      ...(format ? { format } : {}),
      ...(Number.isFinite(declared) ? { expectedBytes: declared } : {}),
    });
    const { reference, reason } = await resolveReference(deps, contract, pipeline);
    // Seconds of CPU for a large upload: on the validation worker thread, not this event loop.
    const report = await validateStored(deps.store, {
      current: () => sharedConcat(encodeColumnar(parsed.table)),
      contract,
      dataset: {
        rows: parsed.table.rows,
        columns: parsed.table.columns.length,
        sha256: parsed.input.sha256,
        bytes: parsed.input.bytes,
        format: parsed.format,
      },
      ...(reference ? { reference } : {}),
      ...(reason ? { noReferenceReason: reason } : {}),
    });
    return { status: 200, jsonBody: report };
  };
}

// Function names are unique across an app: the activity of the same concept is 'validateDataset'.
app.http('checkDataset', {
  route: 'api/datasets/validate',
  methods: ['POST'],
  authLevel: 'function',
  handler: withProblems(validateDatasetHandler(async () => dataDeps(await getServices()))),
});
