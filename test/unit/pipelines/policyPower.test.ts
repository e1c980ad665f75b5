import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HttpRequest } from '@azure/functions';
import { main } from '../../../cli/sluice';
import { putPipeline } from '../../../functions/putPipeline';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { parseEvaluationPolicy } from '../../../lib/evaluation/policy';
import { normalQuantile, policyPower } from '../../../lib/evaluation/power';
import type { Services } from '../../../lib/services';

/**
 * Issue 16: non-inferiority with margin 0.02 on 37 holdout rows has an interval of about ±0.08, so
 * every retrain was blocked and nobody was told. Stored anyway, with a warning naming the smallest
 * difference the rows can detect, the rows needed and what was assumed.
 */

const root = path.resolve(__dirname, '..', '..', '..');
const wages = () =>
  JSON.parse(readFileSync(path.join(root, 'examples', 'pipelines', 'wages.json'), 'utf8')) as Record<
    string,
    any // eslint-disable-line @typescript-eslint/no-explicit-any
  >;
const strict = (over: object = {}) => ({
  ...wages(),
  evaluation: { primaryMetric: 'r2', comparison: { mode: 'non_inferiority', margin: 0.02 }, ...over },
});

function deps(runs: RunDocument[] = []) {
  return {
    pipelines: { put: async (name: string) => ({ name, version: 4, createdAt: '2026-03-01T00:00:00.000Z' }) },
    artifacts: { exists: async () => true },
    runs: { list: async () => runs },
    config: { USER_CODE_LOCAL: true, USER_CODE_ROOT: '.' },
  } as unknown as Pick<Services, 'pipelines' | 'artifacts' | 'runs' | 'config'>;
}

async function put(def: unknown, query = '', runs?: RunDocument[]) {
  const res = await putPipeline(deps(runs))(
    new HttpRequest({
      method: 'PUT',
      url: `http://localhost:7071/api/pipelines/wages${query}`,
      params: { name: 'wages' },
      headers: { 'content-type': 'application/json' },
      body: { string: JSON.stringify(def) },
    }),
  );
  return res as {
    status: number;
    jsonBody: { warnings?: { field: string; message: string; rowsNeeded: number }[]; code?: string };
  };
}

const evaluatedRun = (rows: number, difference?: object) =>
  ({
    id: 'wages-run-7',
    metrics: { evaluation: { primaryMetric: 'r2', rows, ...(difference ? { difference } : {}) } },
  }) as unknown as RunDocument;

describe('a policy the holdout cannot pass', () => {
  it('the normal quantile is right where it is used', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.8)).toBeCloseTo(0.841621, 5);
    expect(normalQuantile(0.0005)).toBeCloseTo(-3.290527, 4);
  });

  it('margin 0.02 on 37 rows: about ±0.08, and how many rows would do', () => {
    const policy = parseEvaluationPolicy({
      primaryMetric: 'accuracy',
      comparison: { mode: 'non_inferiority', margin: 0.02 },
    });
    const w = policyPower(policy, { rows: 37, rowsFrom: 'as given' })!;
    expect(w.halfWidth).toBeCloseTo(0.079, 3);
    expect(w.message).toContain('the interval of the accuracy difference is about ±0.08 at 95%');
    expect(w.message).toContain('smallest difference these rows can detect is 0.08');
    expect(w.rowsNeeded).toBeGreaterThan(1000);
    expect(w.message).toContain(`About ${w.rowsNeeded} evaluation rows`);
    expect(w.message).toContain('Assumed: 37 evaluation rows (as given) and two models that disagree');
    // Enough rows: nothing to say.
    expect(policyPower(policy, { rows: w.rowsNeeded, rowsFrom: 'as given' })).toBeUndefined();
  });

  it('uses the spread a previous run measured, and says so', () => {
    const policy = parseEvaluationPolicy({
      primaryMetric: 'accuracy',
      comparison: { mode: 'non_inferiority', margin: 0.02 },
    });
    // A run on 400 rows measured ±0.05: wider than the default assumption would give.
    const w = policyPower(policy, {
      rows: 400,
      rowsFrom: 'as in run r',
      measured: { lower: -0.05, upper: 0.05, confidence: 0.95, rows: 400, from: 'run r' },
    })!;
    expect(w.halfWidth).toBeCloseTo(0.05, 6);
    expect(w.assumed).toContain('measured by run r');
  });

  it('flags superiority that only a large improvement can pass; not a loss without a measured spread', () => {
    const sup = parseEvaluationPolicy({ primaryMetric: 'roc_auc' });
    expect(policyPower(sup, { rows: 37, rowsFrom: 'as given' })!.message).toMatch(
      /only a candidate better by more than 0\.08 can pass/,
    );
    expect(policyPower(sup, { rows: 5_000, rowsFrom: 'as given' })).toBeUndefined();
    const rmse = parseEvaluationPolicy({
      primaryMetric: 'rmse',
      comparison: { mode: 'non_inferiority', margin: 0.02 },
    });
    expect(policyPower(rmse, { rows: 37, rowsFrom: 'as given' })).toBeUndefined();
  });

  it('PUT stores the pipeline and warns, with rows given or from the last run', async () => {
    const given = await put(strict(), '?rows=37');
    expect(given.status).toBe(201);
    expect(given.jsonBody.warnings).toEqual([
      expect.objectContaining({ field: 'evaluation.comparison.margin', code: 'policy_untestable' }),
    ]);
    const fromRun = await put(strict(), '', [evaluatedRun(37)]);
    expect(fromRun.jsonBody.warnings![0]!.message).toContain('37 evaluation rows (as in run wages-run-7)');
    expect((await put(strict())).jsonBody.warnings).toBeUndefined();
    expect((await put(strict(), '?rows=100000')).jsonBody.warnings).toBeUndefined();
    const bad = await put(strict(), '?rows=-3');
    expect(bad.status).toBe(400);
    expect(bad.jsonBody.code).toBe('invalid_rows');
  });

  it('sluice pipelines apply --rows prints the warning', async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        void putPipeline(deps())(
          new HttpRequest({
            method: req.method!,
            url: `http://127.0.0.1${req.url!}`,
            params: { name: decodeURIComponent(req.url!.split('?')[0]!.split('/').pop()!) },
            headers: { 'content-type': 'application/json' },
            body: { string: body },
          }),
        ).then((r) => {
          res.writeHead(r.status ?? 200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(r.jsonBody));
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'sluice-power-')), 'wages.json');
      writeFileSync(file, JSON.stringify(strict()));
      const lines: string[] = [];
      expect(
        await main(['pipelines', 'apply', file, '--rows', '37', '--url', url], (l) => lines.push(l)),
      ).toBe(0);
      expect(lines[0]).toBe('pipeline wages is now at version 4');
      expect(lines[1]).toMatch(
        /^ {2}⚠ evaluation\.comparison\.margin: non-inferiority margin 0\.02 on 37 evaluation rows/,
      );
      await expect(
        main(['pipelines', 'apply', file, '--rows', 'many', '--url', url], () => undefined),
      ).rejects.toThrow(/--rows must be a positive whole number/);
    } finally {
      server.close();
    }
  });
});
