import { readFileSync } from 'node:fs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HttpRequest } from '@azure/functions';
import { putPipeline } from '../../../functions/putPipeline';
import { uploadDataset } from '../../../functions/uploadDataset';
import { main } from '../../../cli/sluice';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import type { Services } from '../../../lib/services';

/**
 * Issue 16: specs that cannot train were saved (ridge on a category target failed an hour later in
 * training), a split without `validation` said "must add up to 1", and a missing golden set blob
 * was found only at evaluation. All of it is refused at PUT, each with its field named.
 */

const root = path.resolve(__dirname, '..', '..', '..');
const wages = () =>
  JSON.parse(readFileSync(path.join(root, 'examples', 'pipelines', 'wages.json'), 'utf8')) as Record<
    string,
    any // eslint-disable-line @typescript-eslint/no-explicit-any
  >;

function fakeDeps(existing: Set<string> = new Set()) {
  const put = jest.fn(async (name: string) => ({ name, version: 1, createdAt: '2026-03-01T00:00:00.000Z' }));
  const deps = {
    config: { USER_CODE_LOCAL: true, USER_CODE_ROOT: '.' },
    pipelines: { put },
    artifacts: {
      exists: async (l: { container: string; path: string }) => existing.has(`${l.container}/${l.path}`),
    },
  } as unknown as Pick<Services, 'pipelines' | 'artifacts' | 'config'>;
  return { deps, put };
}

async function putDef(def: unknown, existing?: Set<string>) {
  const { deps, put } = fakeDeps(existing);
  const res = await putPipeline(deps)(
    new HttpRequest({
      method: 'PUT',
      url: 'http://localhost:7071/api/pipelines/wages',
      params: { name: 'wages' },
      headers: { 'content-type': 'application/json' },
      body: { string: JSON.stringify(def) },
    }),
  );
  return {
    res: res as {
      status: number;
      jsonBody: {
        code?: string;
        field?: string;
        detail?: string;
        errors?: { field: string; message: string }[];
      };
    },
    put,
  };
}

describe('issue 16: a spec that cannot train is refused at PUT with the field named', () => {
  it('the shipped example still saves', async () => {
    const { res, put } = await putDef(wages());
    expect(res.status).toBe(201);
    expect(put).toHaveBeenCalled();
  });

  it('ridge on a category target: 400 naming training.algorithm', async () => {
    const def = wages();
    delete def.dataset.target;
    delete def.dataset.task;
    def.training.target = 'gender';
    def.training.features = ['education', 'age'];
    const { res, put } = await putDef(def);
    expect(res.status).toBe(400);
    expect(res.jsonBody.field).toBe('training.algorithm');
    expect(res.jsonBody.detail).toMatch(
      /ridge predicts a number, but the target "gender" is a category column/,
    );
    expect(put).not.toHaveBeenCalled();
  });

  it('ridge on a target the contract calls binary: 400, from the contract task', () => {
    const def = wages();
    def.dataset.target = 'union';
    def.dataset.task = 'binary';
    def.training.target = 'union';
    def.training.features = ['education', 'age'];
    const r = pipelineDefinitionSchema.safeParse(def);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({ path: ['training', 'algorithm'] });
    expect(r.error!.issues[0]!.message).toContain('a binary target');
  });

  it('logistic_regression on a numeric target: 400 naming training.algorithm', async () => {
    const def = wages();
    def.training.algorithm = 'logistic_regression';
    def.training.hyperparameters = {};
    def.evaluation = { primaryMetric: 'roc_auc' };
    const { res } = await putDef(def);
    expect(res.status).toBe(400);
    expect(res.jsonBody.field).toBe('training.algorithm');
    expect(res.jsonBody.detail).toMatch(
      /logistic_regression predicts classes, but the target "wage" is a regression target/,
    );
  });

  it('logistic_regression on an integer 0/1 target without a task is accepted', () => {
    const def = wages();
    delete def.dataset.target;
    delete def.dataset.task;
    def.training = { algorithm: 'logistic_regression', target: 'union', features: ['education', 'age'] };
    def.evaluation = { primaryMetric: 'roc_auc' };
    expect(pipelineDefinitionSchema.safeParse(def).success).toBe(true);
  });

  it('a split without validation names the missing key, not "must add up to 1"', async () => {
    const def = wages();
    def.training.split = { train: 0.8, holdout: 0.2 };
    const { res } = await putDef(def);
    expect(res.status).toBe(400);
    expect(res.jsonBody.field).toBe('training.split.validation');
    expect(res.jsonBody.detail).toContain('validation is missing');
    expect(res.jsonBody.detail).toContain('give validation: 0');
    expect(res.jsonBody.detail).not.toContain('must add up to 1');
    // A partial split whose defaults complete it still works, and all three given but wrong keeps the sum message.
    def.training.split = { train: 0.7 };
    expect((await putDef(def)).res.status).toBe(201);
    def.training.split = { train: 0.5, validation: 0.1, holdout: 0.1 };
    expect((await putDef(def)).res.jsonBody.detail).toContain('must add up to 1');
  });

  it('a feature or target not in the dataset contract: 400 naming it', async () => {
    const def = wages();
    def.training.features = ['education', 'shoe_size'];
    const { res } = await putDef(def);
    expect(res.status).toBe(400);
    expect(res.jsonBody.field).toBe('training.features.1');
  });

  it('a goldenSet blob that does not exist: 400 naming goldenSet.blob; an existing one saves', async () => {
    const def = { ...wages(), goldenSet: { blob: 'datasets/files/golden.csv' } };
    const missing = await putDef(def);
    expect(missing.res.status).toBe(400);
    expect(missing.res.jsonBody).toMatchObject({ code: 'blob_not_found', field: 'goldenSet.blob' });
    expect(missing.res.jsonBody.detail).toContain('sluice datasets upload');
    expect(missing.put).not.toHaveBeenCalled();
    const present = await putDef(def, new Set(['datasets/files/golden.csv']));
    expect(present.res.status).toBe(201);
  });
});

describe('issue 16: sluice datasets upload puts a file where schedules and golden sets can use it', () => {
  it('PUT /api/datasets/files/{name} stores at datasets/files/<name>, a blob name both schemas accept', async () => {
    const stored = new Map<string, Buffer>();
    const deps = {
      config: { INGEST_MAX_BYTES: 1024 },
      artifacts: {
        put: async (l: { container: string; path: string }, data: Buffer) => {
          stored.set(`${l.container}/${l.path}`, data);
          return { ok: true, uri: 'x', etag: 'e', sha256: 'a'.repeat(64), written: true };
        },
      },
    } as unknown as Pick<Services, 'config' | 'artifacts'>;
    const req = (name: string, body: string, type = 'text/csv') =>
      new HttpRequest({
        method: 'PUT',
        url: `http://localhost:7071/api/datasets/files/${name}`,
        params: { name },
        headers: { 'content-type': type },
        body: { string: body },
      });
    const res = (await uploadDataset(deps)(req('golden.csv', 'a,b\n1,2\n'))) as {
      status: number;
      jsonBody: { blob: string; bytes: number };
    };
    expect(res.status).toBe(201);
    expect(res.jsonBody).toMatchObject({ blob: 'datasets/files/golden.csv', bytes: 8 });
    expect(stored.get('datasets/files/golden.csv')?.toString()).toBe('a,b\n1,2\n');
    const def = {
      ...wages(),
      goldenSet: { blob: res.jsonBody.blob },
      schedule: { cron: '0 0 3 * * *', source: { blob: res.jsonBody.blob } },
    };
    expect(pipelineDefinitionSchema.safeParse(def).success).toBe(true);

    const bad = (await uploadDataset(deps)(req('..', 'a\n1\n'))) as {
      status: number;
      jsonBody: { field: string };
    };
    expect(bad).toMatchObject({ status: 400, jsonBody: { field: 'name' } });
    const big = (await uploadDataset(deps)(req('big.csv', 'x'.repeat(2000)))) as { status: number };
    expect(big.status).toBe(413);
  });

  it('the CLI uploads under the file name (or --name) and prints the blob name to use', async () => {
    const seen: { method?: string; url?: string; type?: string; body?: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], body });
        const name = decodeURIComponent(req.url!.split('/').pop()!);
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ blob: `datasets/files/${name}`, sha256: 'b'.repeat(64), bytes: body.length }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const dir = mkdtempSync(path.join(tmpdir(), 'sluice-upload-'));
      const file = path.join(dir, 'golden.csv');
      writeFileSync(file, 'a,b\n1,2\n');
      const lines: string[] = [];
      expect(await main(['datasets', 'upload', file, '--url', url], (l) => lines.push(l))).toBe(0);
      expect(seen[0]).toMatchObject({
        method: 'PUT',
        url: '/api/datasets/files/golden.csv',
        type: 'text/csv',
        body: 'a,b\n1,2\n',
      });
      expect(lines.join('\n')).toContain('"goldenSet": { "blob": "datasets/files/golden.csv" }');
      expect(lines.join('\n')).toContain('"source": { "blob": "datasets/files/golden.csv" }');
      await main(['datasets', 'upload', file, '--name', 'holdout-2026.csv', '--url', url], () => undefined);
      expect(seen[1]!.url).toBe('/api/datasets/files/holdout-2026.csv');
    } finally {
      server.close();
    }
  });

  it('sluice pipelines apply shows every bad field of a refused definition, one per line', async () => {
    const def = wages();
    def.training.algorithm = 'logistic_regression';
    def.training.hyperparameters = {};
    def.training.split = { train: 0.8, holdout: 0.2 };
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        void putDef(JSON.parse(body)).then(({ res: r }) => {
          res.writeHead(r.status, { 'content-type': 'application/problem+json' });
          res.end(JSON.stringify(r.jsonBody));
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'sluice-apply-')), 'wages.json');
      writeFileSync(file, JSON.stringify(def));
      const err = await main(['pipelines', 'apply', file, '--url', url], () => undefined).catch(
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(Error);
      const lines = (err as Error).message.split('\n');
      expect(lines[0]).toMatch(/HTTP 400: invalid_pipeline 2 problems:$/);
      expect(lines).toContainEqual(
        expect.stringMatching(/^ {2}training\.split\.validation: validation is missing/),
      );
      expect(lines).toContainEqual(
        expect.stringMatching(/^ {2}training\.algorithm: logistic_regression predicts classes/),
      );
    } finally {
      server.close();
    }
  });
});
