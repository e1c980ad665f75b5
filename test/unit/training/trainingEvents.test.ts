/**
 * POST /api/events/training: both Event Grid handshakes, both event schemas, batches, jobs Sluice
 * did not start and malformed deliveries. The job → run lookup is the real one over an in-memory
 * `tryGetJson`; the wake-up is recorded instead of raised.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import type { WakeData } from '../../../functions/trainingEvents';
import { createTrainingEventsHandler } from '../../../functions/trainingEvents';
import { withProblems } from '../../../functions/support/http';
import { trainingJobId } from '../../../lib/training/jobId';
import type { Problem } from '../../../lib/http/problem';
import { jobOwnerLookup, ownerOf, parseDelivery } from '../../../lib/training/events';

const RUN = 'churn-2024-05-01T10-00-00Z-ab12';
const JOB = trainingJobId(RUN);
const JOB2 = trainingJobId(RUN, 2);
const WORKSPACE =
  '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw';

/** jobs/<jobId>/request.json as the backends write it at submit. */
function jobFiles(jobs: Record<string, string>) {
  const reads: string[] = [];
  return {
    reads,
    files: {
      async tryGetJson<T>(ref: { container: string; path: string }) {
        reads.push(`${ref.container}/${ref.path}`);
        const [jobId, file] = ref.path.split('/');
        const runId = jobs[jobId!];
        if (ref.container !== 'jobs' || file !== 'request.json' || !runId) return undefined;
        return { value: { jobId, runId, spec: {}, dataset: {} } as T, etag: '"1"' };
      },
    },
  };
}

function setup(wakeError?: Error, startedJobs?: () => Promise<Set<string>>) {
  const store = jobFiles({ [JOB]: RUN, [JOB2]: RUN });
  const woken: { instanceId: string; data: WakeData }[] = [];
  const logs: string[] = [];
  const handler = withProblems(
    createTrainingEventsHandler(
      async () => ({ lookup: jobOwnerLookup(store.files), ...(startedJobs ? { startedJobs } : {}) }),
      async (instanceId, data) => {
        if (wakeError) throw wakeError;
        woken.push({ instanceId, data });
      },
    ),
  );
  const call = async (init: {
    method?: string;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
  }) => {
    const req = new HttpRequest({
      url: 'http://localhost/api/events/training?code=k',
      method: init.method ?? 'POST',
      headers: { 'content-type': 'application/json', ...init.headers },
      ...(init.raw !== undefined || init.body !== undefined
        ? { body: { string: init.raw ?? JSON.stringify(init.body) } }
        : {}),
    });
    const ctx = new InvocationContext({
      logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')),
    });
    return handler(req, ctx);
  };
  return { call, woken, logs, reads: store.reads };
}

/** An Azure ML run event in the Event Grid schema (the shape of the documented sample). */
const gridEvent = (jobId: string, status: string | null, over: Record<string, unknown> = {}) => ({
  topic: WORKSPACE,
  subject: `experiments/5b7e4f1c-0000-4000-8000-000000000001/runs/${jobId}`,
  eventType: 'Microsoft.MachineLearningServices.RunStatusChanged',
  eventTime: '2024-05-01T10:05:00.000Z',
  id: `evt-${jobId}-${status}`,
  data: {
    experimentId: '5b7e4f1c-0000-4000-8000-000000000001',
    experimentName: 'sluice',
    runId: jobId,
    runType: null,
    runTags: { 'sluice.jobId': jobId, 'sluice.runId': RUN },
    runProperties: {},
    runStatus: status,
  },
  dataVersion: '',
  metadataVersion: '1',
  ...over,
});

/** The same event in the CloudEvents 1.0 schema. */
const cloudEvent = (jobId: string, type = 'Microsoft.MachineLearningServices.RunCompleted') => ({
  specversion: '1.0',
  source: WORKSPACE,
  subject: `experiments/5b7e4f1c-0000-4000-8000-000000000001/runs/${jobId}`,
  type,
  time: '2024-05-01T10:05:00.000Z',
  id: `ce-${jobId}`,
  data: { experimentName: 'sluice', runId: jobId, runType: null, runTags: {}, runProperties: {} },
});

describe('subscription handshakes', () => {
  it('answers the Event Grid validation event with its code and wakes nothing', async () => {
    const t = setup();
    const res = await t.call({
      headers: { 'aeg-event-type': 'SubscriptionValidation' },
      body: [
        {
          id: '2d1781af-3a4c-4d7c-bd0c-e34b19da4e66',
          topic: WORKSPACE,
          subject: '',
          data: {
            validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
            validationUrl: 'https://rp-eastus2.eventgrid.azure.net/eventsubscriptions/x/validate?id=1',
          },
          eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
          eventTime: '2024-05-01T10:00:00.000Z',
          metadataVersion: '1',
          dataVersion: '1',
        },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.jsonBody).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
    expect(t.woken).toEqual([]);
  });

  it('grants the CloudEvents OPTIONS abuse-protection request to the asking origin', async () => {
    const t = setup();
    const res = await t.call({
      method: 'OPTIONS',
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' },
    });
    expect(res.status).toBe(200);
    const headers = res.headers as Record<string, string>;
    expect(headers['webhook-allowed-origin']).toBe('eventgrid.azure.net');
    expect(headers.allow).toContain('POST');
  });

  it('refuses an OPTIONS request without a usable WebHook-Request-Origin', async () => {
    const t = setup();
    const cases: Record<string, string>[] = [
      {},
      { 'WebHook-Request-Origin': 'https://eventgrid.azure.net/ x' },
    ];
    for (const headers of cases) {
      const res = await t.call({ method: 'OPTIONS', headers });
      expect(res.status).toBe(400);
      expect((res.jsonBody as Problem).field).toBe('webhook-request-origin');
    }
  });
});

describe('job events', () => {
  it('Event Grid schema: a Completed status wakes <runId>:train with the job id', async () => {
    const t = setup();
    const res = await t.call({ body: [gridEvent(JOB, 'Completed')] });
    expect(res.status).toBe(200);
    expect(t.woken).toEqual([
      {
        instanceId: `${RUN}:train`,
        data: { jobId: JOB, status: 'Completed', eventId: `evt-${JOB}-Completed` },
      },
    ]);
    expect(res.jsonBody).toMatchObject({
      schema: 'eventgrid',
      received: 1,
      woken: [{ jobId: JOB, runId: RUN, instanceId: `${RUN}:train` }],
      ignored: [],
    });
  });

  it('CloudEvents schema: a single RunCompleted event (structured mode) wakes the monitor', async () => {
    const t = setup();
    const res = await t.call({
      headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
      body: cloudEvent(JOB),
    });
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ schema: 'cloudevents', received: 1 });
    expect(t.woken.map((w) => [w.instanceId, w.data.status])).toEqual([[`${RUN}:train`, 'Completed']]);
  });

  it('a second attempt of the run wakes that attempt’s monitor', async () => {
    const t = setup();
    await t.call({ body: [gridEvent(JOB2, 'Failed')] });
    expect(t.woken.map((w) => w.instanceId)).toEqual([`${RUN}:train:2`]);
    expect(ownerOf(RUN, JOB2)).toEqual({ runId: RUN, attempt: 2, instanceId: `${RUN}:train:2` });
  });

  it('a batch: final statuses wake once per job; unknown jobs, interim statuses and other events are ignored', async () => {
    const t = setup();
    const res = await t.call({
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: [
        {
          ...cloudEvent(JOB, 'Microsoft.MachineLearningServices.RunStatusChanged'),
          id: 'a',
          data: { runId: JOB, runStatus: 'Running' },
        },
        {
          ...cloudEvent(JOB, 'Microsoft.MachineLearningServices.RunStatusChanged'),
          id: 'b',
          data: { runId: JOB, runStatus: 'failed' },
        },
        { ...cloudEvent(JOB), id: 'c' },
        { ...cloudEvent('someone-elses-job'), id: 'd' },
        {
          ...cloudEvent(JOB, 'Microsoft.MachineLearningServices.ModelRegistered'),
          id: 'e',
          data: { ModelName: 'm' },
        },
        { ...cloudEvent(JOB2), id: 'f' },
      ],
    });
    expect(res.status).toBe(200);
    expect(t.woken.map((w) => [w.instanceId, w.data.eventId, w.data.status])).toEqual([
      [`${RUN}:train`, 'b', 'failed'],
      [`${RUN}:train:2`, 'f', 'Completed'],
    ]);
    const ignored = (res.jsonBody as { ignored: { id: string; reason: string }[] }).ignored;
    expect(ignored.map((i) => i.id)).toEqual(['a', 'c', 'd', 'e']);
    expect(ignored.find((i) => i.id === 'd')!.reason).toBe('not a Sluice training job');
    expect(ignored.find((i) => i.id === 'a')!.reason).toContain('Running');
  });

  it('a job Sluice did not start: 202, nothing woken, logged', async () => {
    const t = setup();
    const res = await t.call({ body: [gridEvent('automl_3f2a-child-5', 'Completed')] });
    expect(res.status).toBe(202);
    expect(t.woken).toEqual([]);
    expect(t.logs.join('\n')).toContain('automl_3f2a-child-5 was not started by Sluice');
  });

  it('a run id that is not a job id is never used as a blob path', async () => {
    const t = setup();
    const res = await t.call({ body: [gridEvent('../models/sha256', 'Completed')] });
    expect(res.status).toBe(202);
    expect(t.reads).toEqual([]);
  });

  it('without data.runId the job comes from the subject experiments/<id>/runs/<job>', async () => {
    const t = setup();
    const event = gridEvent(JOB, 'Canceled');
    delete (event.data as { runId?: string }).runId;
    await t.call({ body: [event] });
    expect(t.woken.map((w) => w.data.jobId)).toEqual([JOB]);
  });

  it('a monitor that does not exist (yet) does not fail the delivery', async () => {
    const t = setup(new Error(`No instance with ID '${RUN}:train' found.`));
    const res = await t.call({ body: [gridEvent(JOB, 'Completed')] });
    expect(res.status).toBe(202);
    const ignored = (res.jsonBody as { ignored: { reason: string }[] }).ignored;
    expect(ignored[0]!.reason).toContain(`${RUN}:train did not take the event`);
    expect(t.logs.join('\n')).toContain('No instance with ID');
  });
});

describe('malformed deliveries: 400 problem naming the field', () => {
  const cases: [string, { raw?: string; body?: unknown }, string][] = [
    ['not JSON', { raw: '[{"id": ' }, '(body)'],
    [
      'an event without eventType or specversion',
      { body: [{ id: '1', subject: 's', eventTime: 't' }] },
      '[0].eventType',
    ],
    [
      'a batch whose second event has no id',
      { body: [gridEvent(JOB, 'Completed'), { ...gridEvent(JOB, 'Completed'), id: '' }] },
      '[1].id',
    ],
    ['a CloudEvent without source', { body: { specversion: '1.0', id: '1', type: 't' } }, 'source'],
    [
      'a CloudEvent of another spec version',
      { body: [{ ...cloudEvent(JOB), specversion: '0.3' }] },
      '[0].specversion',
    ],
    [
      'a validation event without a code',
      {
        body: [
          { ...gridEvent(JOB, null), eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: {} },
        ],
      },
      '[0].data.validationCode',
    ],
    [
      'a run event naming no run',
      {
        body: [
          { ...gridEvent(JOB, 'Completed'), subject: 'experiments/x', data: { runStatus: 'Completed' } },
        ],
      },
      '[0].data.runId',
    ],
    [
      'runTags that are not an object',
      { body: [{ ...gridEvent(JOB, 'Completed'), data: { runId: JOB, runTags: 'x' } }] },
      '[0].data.runTags',
    ],
    ['an event that is not an object', { body: [42] }, '[0]'],
  ];
  it.each(cases)('%s', async (_name, init, field) => {
    const t = setup();
    const res = await t.call(init);
    expect(res.status).toBe(400);
    expect((res.headers as Record<string, string>)['content-type']).toBe('application/problem+json');
    expect((res.jsonBody as Problem).field).toBe(field);
    expect(t.woken).toEqual([]);
  });

  it('another content type is 415', async () => {
    const t = setup();
    const res = await t.call({ headers: { 'content-type': 'text/plain' }, raw: 'hello' });
    expect(res.status).toBe(415);
    expect((res.jsonBody as Problem).field).toBe('content-type');
  });

  it('an empty body is 400', async () => {
    const t = setup();
    const res = await t.call({ raw: '' });
    expect(res.status).toBe(400);
    expect((res.jsonBody as Problem).code).toBe('empty_body');
  });
});

describe('a 1 MB delivery listing 5,000 job ids (issue 13 load and bad input)', () => {
  // Lean Event Grid events, so that 5,000 fit in Event Grid's 1 MB.
  const lean = (jobId: string, i: number) => ({
    subject: `experiments/e/runs/${jobId}`,
    eventType: 'Microsoft.MachineLearningServices.RunCompleted',
    eventTime: '2026-12-05T00:00:00Z',
    id: `e${i}`,
    data: { runId: jobId, runStatus: 'Completed' },
  });
  const many = (n: number, known: string[] = []) => [
    ...known.map((j, i) => lean(j, i)),
    ...Array.from({ length: n - known.length }, (_, i) => lean(`other-${i.toString(36)}`, i + known.length)),
  ];

  it('reads the request file only of jobs Sluice started, after one listing', async () => {
    let listings = 0;
    const t = setup(undefined, async () => {
      listings++;
      return new Set([JOB, 'another-sluice-job']);
    });
    const res = await t.call({ body: many(5000, [JOB]) });
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ received: 5000, woken: [{ jobId: JOB, runId: RUN }] });
    expect((res.jsonBody as { ignored: unknown[] }).ignored).toHaveLength(4999);
    expect(listings).toBe(1);
    expect(t.reads).toEqual([`jobs/${JOB}/request.json`]);
  });

  it('refuses more events than Event Grid ever batches with 413, before any lookup', async () => {
    const t = setup(undefined, async () => new Set([JOB]));
    const res = await t.call({ body: many(5001, [JOB]) });
    expect(res.status).toBe(413);
    expect((res.jsonBody as Problem).code).toBe('too_many_events');
    expect(t.reads).toEqual([]);
    expect(t.woken).toEqual([]);
  });

  it('a delivery with no content type (what a cross-site page can send) is 415 and wakes nothing', async () => {
    // The harness's own handler, whose lookup knows JOB: without the guard it would wake the run.
    const t = setup();
    const res = await t.call({ body: [gridEvent(JOB, 'Completed')], headers: { 'content-type': '' } });
    expect(res.status).toBe(415);
    expect((res.jsonBody as Problem).field).toBe('content-type');
    expect(t.woken).toEqual([]);
    expect(t.reads).toEqual([]);
  });
});

describe('parseDelivery', () => {
  it('reduces both schemas to the same job event', () => {
    const a = parseDelivery([gridEvent(JOB, 'Completed')]).events[0];
    const b = parseDelivery({
      ...cloudEvent(JOB, 'Microsoft.MachineLearningServices.RunStatusChanged'),
      data: { runId: JOB, runStatus: 'Completed' },
    }).events[0];
    expect(a).toMatchObject({ kind: 'job', jobId: JOB, status: 'Completed' });
    expect(b).toMatchObject({ kind: 'job', jobId: JOB, status: 'Completed' });
  });
});
