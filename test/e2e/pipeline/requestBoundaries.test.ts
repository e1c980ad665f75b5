/**
 * Issue 13, "The promise holds": who a requester is, what a state-changing endpoint accepts, where a
 * run may read from, and how bad input is answered, all through devhost over real HTTP with the
 * real app, Azurite and the Cosmos emulator. Each describe is named after the issue item it pins.
 * Needs `dist/`.
 */
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { CosmosClient } from '@azure/cosmos';
import { AZURITE_ACCOUNT, AZURITE_KEY, COSMOS_EMULATOR_KEY } from '../../../devhost/services/wellKnown';
import { ModelRegistry } from '../../../lib/registry/registry';
import { ArtifactStore } from '../../../lib/storage/blob';
import { CosmosStore } from '../../../lib/storage/cosmos';
import { serializeModel } from '../../../lib/training/models/artifact';
import type { ModelJson } from '../../../lib/training/models/format';
import type { PipelineHarness, Ports } from './harness';
import { freePorts, REQUESTER, startPipelineHarness, testPipeline, WAGES_CSV } from './harness';

jest.setTimeout(240_000);

const PIPELINE = 'e2e-bounds';
const MODEL = 'e2e-bounds-model';
/** A 1x1 PNG: what "an image sent as CSV" looks like on the wire. */
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63fcff9f010005fe02fea7d6a4a10000000049454e44ae426082',
  'hex',
);

/** A classifier with one numeric and one categorical feature (categories red, blue). */
function colorModel(intercept: number): ModelJson {
  const color = { name: 'color', type: 'categorical' as const, categories: ['red', 'blue'] };
  return {
    format: 'sluice-model',
    formatVersion: 1,
    algorithm: 'logistic_regression',
    task: 'binary',
    target: { name: 'label', classes: ['no', 'yes'] },
    features: [{ name: 'size', type: 'numeric' }, color],
    preprocessing: {
      kind: 'standardize_onehot',
      features: [{ name: 'size', type: 'numeric', mean: 0, scale: 1 }, color],
    },
    params: { coefficients: [[0.5, 1, -1]], intercepts: [intercept] },
    training: { seed: 1, hyperparameters: {}, iterations: 0, rows: { train: 0, validation: 0, holdout: 0 } },
  };
}

interface Problem {
  status: number;
  code: string;
  detail: string;
  field?: string;
}

describe('issue 13 request boundaries through devhost', () => {
  let h: PipelineHarness;
  let ports: Ports;
  let artifacts: ArtifactStore;
  let cosmos: CosmosClient;
  let registry: ModelRegistry;
  const started: string[] = [];

  const runsOf = async (pipeline: string) =>
    (await (await h.api('GET', `/api/runs?pipeline=${pipeline}`)).json()) as {
      id: string;
      status: string;
      trigger: { kind: string; by: string };
    }[];
  const production = async () => (await h.model(MODEL))?.aliases.production?.version;
  const startFromBlob = (body: unknown, headers: Record<string, string> = {}) =>
    h.api('POST', `/api/pipelines/${PIPELINE}/runs`, body, headers);

  beforeAll(async () => {
    ports = await freePorts();
    h = await startPipelineHarness({ ports });
    artifacts = ArtifactStore.fromConnectionString(
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${ports.blob}/${AZURITE_ACCOUNT};`,
    );
    cosmos = new CosmosClient({
      endpoint: `http://127.0.0.1:${ports.cosmos}`,
      key: COSMOS_EMULATOR_KEY,
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    registry = new ModelRegistry(new CosmosStore(cosmos).container('models'));

    await h.put(testPipeline(PIPELINE));
    await artifacts.put({ container: 'datasets', path: 'incoming/wages.csv' }, readFileSync(WAGES_CSV));
    await artifacts.put({ container: 'datasets', path: 'incoming/photo.csv' }, PNG);
    await artifacts.put({ container: 'outbox', path: 'secret/link.json' }, '{"link":"approve me"}');

    // A model with two versions, production at 2: what a rollback would move.
    for (const v of [1, 2]) {
      const { bytes, digest } = serializeModel(colorModel(v / 10));
      const stored = await artifacts.put({ container: 'models', path: `${MODEL}/v${v}.json` }, bytes);
      const { version } = await registry.registerVersion({
        modelName: MODEL,
        modelDigest: digest,
        artifactUri: stored.uri,
        datasetDigest: '0'.repeat(64),
        metrics: {},
        trainingSpec: {},
        algorithm: 'logistic_regression',
        runId: `${PIPELINE}-seed-${v}`,
      });
      await registry.moveAlias({
        modelName: MODEL,
        alias: 'production',
        to: version.version,
        by: 'e2e',
        reason: 'seed',
      });
    }
  });

  afterAll(async () => {
    for (const id of started) await h?.api('POST', `/api/runs/${id}/cancel`).catch(() => undefined);
    cosmos?.dispose();
    await h?.stop();
  });

  describe('requestedBy in a blob start does not name the requester (issue 13 item 3)', () => {
    it('refuses a body requestedBy with 400 naming the field, and starts nothing', async () => {
      const before = (await runsOf(PIPELINE)).length;
      const res = await startFromBlob(
        { source: { blob: 'datasets/incoming/wages.csv' }, requestedBy: 'someone-else@example.com' },
        { 'x-ms-client-principal-name': REQUESTER },
      );
      expect(res.status).toBe(400);
      expect(((await res.json()) as Problem).field).toBe('requestedBy');
      expect((await runsOf(PIPELINE)).length).toBe(before);
    });

    it('records the signed-in principal, and no client-chosen header, as the requester', async () => {
      const signedIn = await startFromBlob(
        { source: { blob: 'datasets/incoming/wages.csv' } },
        { 'x-ms-client-principal-name': REQUESTER, 'x-sluice-user': 'someone-else@example.com' },
      );
      expect(signedIn.status).toBe(202);
      const a = ((await signedIn.json()) as { runId: string }).runId;
      started.push(a);
      expect((await h.run(a)).trigger).toMatchObject({ by: REQUESTER });

      const keyOnly = await startFromBlob(
        { source: { blob: 'datasets/incoming/wages.csv' } },
        { 'x-sluice-user': 'someone-else@example.com', 'x-sluice-client': 'cli' },
      );
      expect(keyOnly.status).toBe(202);
      const b = ((await keyOnly.json()) as { runId: string }).runId;
      started.push(b);
      expect((await h.run(b)).trigger).toEqual({ kind: 'cli', by: 'anonymous' });
    });
  });

  describe('cross-site form posts to state-changing endpoints are refused and change nothing (issue 13 item 4)', () => {
    // What a page on another site can make a browser send without a CORS preflight.
    const crossSite: { name: string; headers: Record<string, string>; body: (json: string) => Buffer }[] = [
      {
        name: 'a urlencoded form',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: (json) => Buffer.from(`payload=${encodeURIComponent(json)}`),
      },
      {
        name: 'text/plain holding JSON',
        headers: { 'content-type': 'text/plain;charset=UTF-8' },
        body: (json) => Buffer.from(json),
      },
      {
        name: 'a multipart form',
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        body: (json) =>
          Buffer.from(`--x\r\nContent-Disposition: form-data; name="payload"\r\n\r\n${json}\r\n--x--\r\n`),
      },
      // fetch sends no content type for bytes
      { name: 'no content type', headers: {}, body: (json) => Buffer.from(json) },
    ];

    it('answers 415 naming content-type on every endpoint, and nothing moves', async () => {
      const runId = started[0]!;
      const runBefore = await h.run(runId);
      const runsBefore = (await runsOf(PIPELINE)).length;
      const endpoints: { method: string; route: string; json: unknown }[] = [
        { method: 'PUT', route: '/api/pipelines/e2e-csrf', json: testPipeline('e2e-csrf') },
        { method: 'POST', route: `/api/pipelines/${PIPELINE}/runs`, json: 'education,wage\n1,2\n' },
        { method: 'POST', route: `/api/runs/${runId}/cancel`, json: {} },
        { method: 'POST', route: `/api/models/${MODEL}/rollback`, json: { to: 1, reason: 'cross-site' } },
        { method: 'POST', route: '/api/events/training', json: [] },
        {
          method: 'POST',
          route: `/api/models/${MODEL}/predict`,
          json: { rows: [{ size: 1, color: 'red' }] },
        },
      ];
      for (const e of endpoints) {
        for (const form of crossSite) {
          const text = typeof e.json === 'string' ? e.json : JSON.stringify(e.json);
          const res = await fetch(`${h.url}${e.route}`, {
            method: e.method,
            headers: form.headers,
            body: form.body(text),
          });
          const label = `${e.method} ${e.route} with ${form.name}`;
          expect([label, res.status]).toEqual([label, 415]);
          expect([label, ((await res.json()) as Problem).field]).toEqual([label, 'content-type']);
        }
      }
      expect((await h.api('GET', '/api/pipelines/e2e-csrf')).status).toBe(404);
      expect((await runsOf(PIPELINE)).length).toBe(runsBefore);
      const runAfter = await h.run(runId);
      expect(runAfter.status).not.toBe('canceled');
      expect(runAfter.cancelRequested).toBe(runBefore.cancelRequested);
      expect(await production()).toBe(2);
      const history = (await h.model(MODEL))?.aliasHistory ?? [];
      expect(history.filter((m) => m.alias === 'production').map((m) => m.to)).toEqual([1, 2]);
    });

    it('a body-less POST that says JSON still works (the CLI cancels so)', async () => {
      const res = await fetch(`${h.url}/api/runs/${started[1]!}/cancel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status).toBe(202);
      expect(await h.run(started[1]!)).toMatchObject({ status: 'canceled', cancelRequested: true });
    });
  });

  describe('a source blob or goldenSet outside the datasets container, or with dot segments, is 400 (issue 13)', () => {
    it.each([
      ['datasets/../../x', 'a path climbing out'],
      ['datasets/incoming/../wages.csv', 'a dot-dot segment'],
      ['outbox/secret/link.json', 'the outbox'],
      ['models/e2e-bounds-model/v1.json', 'the models container'],
      ['datasets', 'no path'],
    ])('refuses source.blob %s (%s) with 400 naming source.blob', async (blob) => {
      const before = (await runsOf(PIPELINE)).length;
      const res = await startFromBlob({ source: { blob } });
      expect(res.status).toBe(400);
      const p = (await res.json()) as Problem;
      expect(p).toMatchObject({ code: 'invalid_dataset_blob', field: 'source.blob' });
      expect((await runsOf(PIPELINE)).length).toBe(before);
    });

    it.each(['outbox/secret/link.json', 'datasets/../outbox/secret/link.json'])(
      'refuses a pipeline whose goldenSet is %s, naming goldenSet.blob',
      async (blob) => {
        const res = await h.api(
          'PUT',
          '/api/pipelines/e2e-golden',
          testPipeline('e2e-golden', { goldenSet: { blob } }),
        );
        expect(res.status).toBe(400);
        const p = (await res.json()) as Problem & { errors: { field: string }[] };
        expect(p.errors.map((e) => e.field)).toContain('goldenSet.blob');
        expect((await h.api('GET', '/api/pipelines/e2e-golden')).status).toBe(404);
      },
    );
  });

  describe('Location and runUrl come from the public base URL, never the Host header (issue 13)', () => {
    it('ignores a forged Host header', async () => {
      const body = JSON.stringify({ source: { blob: 'datasets/incoming/wages.csv' } });
      const answer = await new Promise<{ status: number; location: string; runUrl: string; runId: string }>(
        (resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: ports.http,
              method: 'POST',
              path: `/api/pipelines/${PIPELINE}/runs`,
              headers: {
                host: 'evil.example:4444',
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(body),
              },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8').on('data', (c: string) => (text += c));
              res.on('end', () => {
                const json = JSON.parse(text) as { runUrl: string; runId: string };
                resolve({
                  status: res.statusCode ?? 0,
                  location: String(res.headers.location),
                  runUrl: json.runUrl,
                  runId: json.runId,
                });
              });
            },
          );
          req.on('error', reject);
          req.end(body);
        },
      );
      expect(answer.status).toBe(202);
      started.push(answer.runId);
      expect(answer.location).toBe(`${h.url}/api/runs/${answer.runId}`);
      expect(answer.runUrl).toBe(`${h.url}/api/runs/${answer.runId}`);
    });
  });

  describe('an image sent as CSV is refused by name (issue 13)', () => {
    it('refuses a PNG upload with 415 before storing it or starting a run', async () => {
      const before = (await runsOf(PIPELINE)).length;
      const res = await h.api('POST', `/api/pipelines/${PIPELINE}/runs`, PNG, { 'content-type': 'text/csv' });
      expect(res.status).toBe(415);
      const p = (await res.json()) as Problem;
      expect(p.code).toBe('binary_upload');
      expect(p.detail).toContain('PNG image');
      expect((await runsOf(PIPELINE)).length).toBe(before);
      const uploads = [];
      for await (const b of artifacts.list('datasets', `uploads/${PIPELINE}/`)) uploads.push(b.path);
      expect(uploads).toEqual([]);
    });

    it('fails a run whose source blob is a PNG at ingestion, naming the content', async () => {
      const res = await startFromBlob({ source: { blob: 'datasets/incoming/photo.csv' } });
      expect(res.status).toBe(202);
      const { runId } = (await res.json()) as { runId: string };
      const run = await h.finished(runId);
      expect(run.status).toBe('failed');
      const ingest = run.steps.find((s) => s.name === 'ingest');
      expect(`${run.reason ?? ''} ${ingest?.error?.message ?? ''}`).toContain('PNG image');
    });
  });

  describe('predict answers bare arrays, text/plain, numbers for categories and unseen categories (issue 13)', () => {
    const predict = (body: unknown, type = 'application/json') =>
      fetch(`${h.url}/api/models/${MODEL}/predict`, {
        method: 'POST',
        headers: { 'content-type': type },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it('refuses a bare array with 400 naming the {"rows": [...]} shape', async () => {
      const res = await predict([{ size: 1, color: 'red' }]);
      expect(res.status).toBe(400);
      const p = (await res.json()) as Problem;
      expect(p.field).toBe('(body)');
      expect(p.detail).toContain('{"rows"');
    });

    it('refuses text/plain with 415 naming content-type', async () => {
      const res = await predict(JSON.stringify({ rows: [{ size: 1, color: 'red' }] }), 'text/plain');
      expect(res.status).toBe(415);
      expect(((await res.json()) as Problem).field).toBe('content-type');
    });

    it('refuses a number for a categorical feature with 400 naming the row and field', async () => {
      const res = await predict({
        rows: [
          { size: 1, color: 'red' },
          { size: 2, color: 1 },
        ],
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as Problem).field).toBe('rows[1].color');
    });

    it('scores an unseen category like a missing one and says so on its row', async () => {
      const res = await predict({
        rows: [
          { size: 1, color: 'red' },
          { size: 1, color: 'green' },
          { size: 1, color: null },
        ],
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        probabilities: number[][];
        warnings?: { row: number; field: string; code: string }[];
      };
      expect(body.warnings).toEqual([
        expect.objectContaining({ row: 1, field: 'color', code: 'unseen_category' }),
      ]);
      expect(body.probabilities[1]).toEqual(body.probabilities[2]);
      expect(body.probabilities[1]).not.toEqual(body.probabilities[0]);
    });
  });
});
