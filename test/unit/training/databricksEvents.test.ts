/**
 * POST /api/training/databricks-events: Databricks job notifications (HTTP webhook destination)
 * wake the training monitor of the run's job; other events, unknown runs, a missing or wrong
 * destination password and malformed bodies do not. The run → job → monitor lookups are the real
 * ones over an in-memory `tryGetJson`; the wake-up is recorded instead of raised.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import type { DatabricksWakeData } from '../../../functions/databricksEvents';
import { createDatabricksEventsHandler, databricksEventsDeps } from '../../../functions/databricksEvents';
import { withProblems } from '../../../functions/support/http';
import type { Problem } from '../../../lib/http/problem';
import type { ArtifactStore } from '../../../lib/storage/blob';
import { RUN_INDEX_PREFIX } from '../../../lib/training/backends/databricks';
import { basicPasswordMatches, parseDatabricksNotification } from '../../../lib/training/databricksEvents';
import { trainingJobId } from '../../../lib/training/jobId';
import { trainingMonitorInstanceId } from '../../../lib/contracts/training';

const RUN = 'churn-2024-05-01T10-00-00Z-ab12';
const JOB = trainingJobId(RUN);
const DBX_RUN = '41847992357943';
const SECRET = 'a-destination-password-of-some-length';

function memoryStore(blobs: Record<string, unknown>) {
  const reads: string[] = [];
  const store = {
    async tryGetJson<T>(ref: { container: string; path: string }) {
      const key = `${ref.container}/${ref.path}`;
      reads.push(key);
      return key in blobs ? { value: blobs[key] as T, etag: '"1"' } : undefined;
    },
  } as unknown as ArtifactStore;
  return { store, reads };
}

function setup(options: { secret?: string; wakeError?: Error } = {}) {
  const { store, reads } = memoryStore({
    [`jobs/${RUN_INDEX_PREFIX}/${DBX_RUN}.json`]: { jobId: JOB, runId: DBX_RUN },
    [`jobs/${JOB}/request.json`]: { jobId: JOB, runId: RUN },
    // A run index naming a job Sluice has no request for.
    [`jobs/${RUN_INDEX_PREFIX}/555.json`]: { jobId: 'orphan-job', runId: '555' },
  });
  const woken: { instanceId: string; data: DatabricksWakeData }[] = [];
  const handler = withProblems(
    createDatabricksEventsHandler(
      async () => databricksEventsDeps(store, options.secret),
      async (instanceId, data) => {
        if (options.wakeError) throw options.wakeError;
        woken.push({ instanceId, data });
      },
    ),
  );
  const call = async (init: { body?: unknown; raw?: string; headers?: Record<string, string> }) => {
    const req = new HttpRequest({
      url: 'http://localhost/api/training/databricks-events?code=k',
      method: 'POST',
      headers: { 'content-type': 'application/json', ...init.headers },
      body: { string: init.raw ?? JSON.stringify(init.body) },
    });
    return handler(req, new InvocationContext({ logHandler: () => undefined }));
  };
  return { call, woken, reads };
}

const notification = (eventType: string, runId: unknown = DBX_RUN, extra: Record<string, unknown> = {}) => ({
  event_type: eventType,
  workspace_id: '1234567890123456',
  run: { run_id: runId },
  job: { job_id: '281874479417551', name: `sluice ${JOB}` },
  ...extra,
});

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('databricks job notifications', () => {
  it.each(['jobs.on_success', 'jobs.on_failure'])('%s of a Sluice run wakes its monitor', async (type) => {
    const t = setup();
    const res = await t.call({ body: notification(type) });
    expect(res.status).toBe(200);
    const instanceId = trainingMonitorInstanceId(RUN, 1);
    expect(t.woken).toEqual([
      { instanceId, data: { jobId: JOB, status: type, eventId: `databricks:${type}:${DBX_RUN}` } },
    ]);
    expect(res.jsonBody).toEqual({
      eventType: type,
      runId: DBX_RUN,
      woken: [{ jobId: JOB, runId: RUN, instanceId }],
      ignored: [],
    });
  });

  it('takes the run id as a JSON number too, and a task notification by its parent run', async () => {
    const t = setup();
    expect(
      (await t.call({ raw: `{"event_type":"jobs.on_success","run":{"run_id":${DBX_RUN}}}` })).status,
    ).toBe(200);
    const task = notification('jobs.on_failure', '999', { task: { task_key: 'train' } });
    (task.run as Record<string, unknown>).parent_run_id = DBX_RUN;
    expect((await t.call({ body: task })).status).toBe(200);
    expect(t.woken).toHaveLength(2);
  });

  it.each([
    ['jobs.on_start', DBX_RUN, "event type jobs.on_start is not a run's end"],
    [
      'jobs.on_duration_warning_threshold_exceeded',
      DBX_RUN,
      "event type jobs.on_duration_warning_threshold_exceeded is not a run's end",
    ],
    ['jobs.on_success', '123456', 'not a Sluice training run'],
    ['jobs.on_failure', '555', 'job orphan-job has no run to wake'],
  ])('%s of run %s is answered 202 and wakes nothing (%s)', async (type, runId, reason) => {
    const t = setup();
    const res = await t.call({ body: notification(type, runId) });
    expect(res.status).toBe(202);
    expect(res.jsonBody).toMatchObject({ woken: [], ignored: [{ reason }] });
    expect(t.woken).toEqual([]);
  });

  it('a monitor that does not take the event is reported, not an error (its next poll decides)', async () => {
    const t = setup({ wakeError: new Error('instance not found') });
    const res = await t.call({ body: notification('jobs.on_success') });
    expect(res.status).toBe(202);
    expect(JSON.stringify(res.jsonBody)).toContain('instance not found');
  });

  it.each([
    [{ event_type: 'jobs.on_success' }, 'run'],
    [{ event_type: 'jobs.on_success', run: { run_id: '../../x' } }, 'run.run_id'],
    [{ run: { run_id: '1' } }, 'event_type'],
  ])('a malformed notification %j is 400 naming %s', async (body, field) => {
    const t = setup();
    const res = await t.call({ body });
    expect(res.status).toBe(400);
    expect((res.jsonBody as Problem).field).toBe(field);
    expect(t.reads).toEqual([]);
  });

  it('non-JSON is 415 and an empty body 400', async () => {
    const t = setup();
    expect((await t.call({ raw: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await t.call({ raw: '' })).status).toBe(400);
    expect((await t.call({ raw: '{' })).status).toBe(400);
  });

  it('with DATABRICKS_WEBHOOK_SECRET set, only the destination password gets through', async () => {
    const t = setup({ secret: SECRET });
    const attempts: Record<string, string>[] = [
      {},
      { authorization: basic('sluice', 'wrong') },
      { authorization: `Bearer ${SECRET}` },
    ];
    for (const headers of attempts) {
      const res = await t.call({ body: notification('jobs.on_success'), headers });
      expect(res.status).toBe(401);
      expect((res.headers as Record<string, string>)['www-authenticate']).toMatch(/^Basic /);
    }
    expect(t.woken).toEqual([]);
    expect(t.reads).toEqual([]);
    const ok = await t.call({
      body: notification('jobs.on_success'),
      headers: { authorization: basic('any', SECRET) },
    });
    expect(ok.status).toBe(200);
    expect(t.woken).toHaveLength(1);
  });

  it('parses and compares the pieces on their own', () => {
    expect(
      parseDatabricksNotification('{"event_type":"jobs.on_failure","run":{"run_id":9007199254740993}}'),
    ).toEqual({
      eventType: 'jobs.on_failure',
      runId: '9007199254740993',
      final: true,
    });
    expect(basicPasswordMatches(basic('u', 'p:with:colons'), 'p:with:colons')).toBe(true);
    expect(basicPasswordMatches(basic('u', 'p'), 'q')).toBe(false);
    expect(basicPasswordMatches('Basic !!!', 'q')).toBe(false);
    expect(basicPasswordMatches(undefined, 'q')).toBe(false);
  });
});
