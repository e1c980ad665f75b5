/**
 * The conformance list of durable-host-spec §12.1, through real HTTP against the compiled devhost
 * hosting a durable-functions 3.x fixture app (test/fixtures/durable-app). Starters use df.getClient,
 * startNew and createCheckStatusResponse; tests poll the status URL the starter handed out.
 */
import { type DurableApp, eventTypes, startDurableApp } from './support/durableApp';

let app: DurableApp;

beforeAll(async () => {
  app = await startDurableApp();
}, 90_000);

afterAll(async () => {
  await app?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('1. start API', () => {
  it('answers 202 with Location = statusQueryGetUri and Retry-After 10; status is 202 while running, 200 when done', async () => {
    const res = await fetch(`${app.url}/api/start/waitForEvent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Go' }),
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as Record<string, string>;
    expect(res.headers.get('location')).toBe(body.statusQueryGetUri);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(body.statusQueryGetUri).toBe(
      `${app.url}/runtime/webhooks/durabletask/instances/${body.id}?taskHub=ConformanceHub&connection=Storage`,
    );
    for (const key of [
      'sendEventPostUri',
      'terminatePostUri',
      'purgeHistoryDeleteUri',
      'suspendPostUri',
      'resumePostUri',
    ]) {
      expect(body[key]).toContain(`/instances/${body.id}`);
    }

    const running = await fetch(body.statusQueryGetUri!);
    expect(running.status).toBe(202);
    expect(running.headers.get('retry-after')).toBe('5');
    const runningBody = (await running.json()) as Record<string, unknown>;
    expect(['Pending', 'Running']).toContain(runningBody.runtimeStatus);

    expect(await app.raise(body.id!, 'Go', 1)).toBe(202);
    const done = await app.waitDone(body.id!);
    const final = await fetch(body.statusQueryGetUri!);
    expect(final.status).toBe(200);
    expect(Object.keys(done).sort()).toEqual(
      [
        'createdTime',
        'customStatus',
        'input',
        'instanceId',
        'lastUpdatedTime',
        'name',
        'output',
        'runtimeStatus',
      ].sort(),
    );
    expect(done).toMatchObject({
      name: 'waitForEvent',
      instanceId: body.id,
      runtimeStatus: 'Completed',
      input: { name: 'Go' },
    });
    expect(done.createdTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(done.lastUpdatedTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

describe('2. function chaining', () => {
  it('runs helloSequence to ["Hello Tokyo","Hello Seattle","Hello Cairo"]', async () => {
    const { id } = await app.start('helloSequence');
    expect((await app.waitDone(id)).output).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello Cairo']);
  });

  it('hands activities their input as the orchestrator passed it (string, object, number, none)', async () => {
    const { id } = await app.start('inputShapes');
    expect((await app.waitDone(id)).output).toEqual([
      { type: 'string', value: 'Tokyo' },
      { type: 'object', value: { city: 'Seattle' } },
      { type: 'number', value: 7 },
      { type: 'undefined', value: null },
    ]);
  });
});

describe('3. sub-orchestrations', () => {
  it('returns the child output; the explicit child id is queryable; the implicit id is <executionId>:<seq>', async () => {
    const { id } = await app.start('sayHelloWithSubOrchestrator', 'World');
    const done = await app.waitDone(id);
    expect(done.output).toEqual({
      explicit: { greeting: 'Hello World', parent: id },
      implicit: { greeting: 'Hello Implicit', parent: id },
    });
    const child = await app.status(`${id}-child`);
    expect(child.code).toBe(200);
    expect(child.body).toMatchObject({ name: 'childHello', runtimeStatus: 'Completed', input: 'World' });

    const all = (await app.client('all')).body as {
      instanceId: string;
      input: unknown;
      output: { parent?: string };
    }[];
    const implicit = all.filter((s) => s.input === 'Implicit' && s.output?.parent === id);
    expect(implicit).toHaveLength(1);
    // The second sub-orchestration call is the parent's sequence id 1.
    expect(implicit[0]!.instanceId).toMatch(/^[0-9a-f]{32}:1$/);
  });
});

describe('4. custom status and history', () => {
  it('sets customStatus and shows the history shape of the extension', async () => {
    const { id } = await app.start('sayHelloWithCustomStatus', 'CS');
    const done = await app.waitDone(id);
    expect(done.customStatus).toBe('Hello CS');
    expect(done.output).toBe('Hello CS');

    const plain = await app.status(id, 'showHistory=true');
    expect(eventTypes(plain.body)).toEqual(['ExecutionStarted', 'TaskCompleted', 'ExecutionCompleted']);
    const [started, completed, end] = plain.body.historyEvents!;
    expect(started).toMatchObject({ FunctionName: 'sayHelloWithCustomStatus', Input: '"CS"' });
    expect(completed).toMatchObject({ FunctionName: 'sayHello', Input: '["\\"CS\\""]' });
    expect(completed!.ScheduledTime).toEqual(expect.any(String));
    expect(completed).not.toHaveProperty('Result');
    expect(end).toMatchObject({ OrchestrationStatus: 'Completed' });
    for (const e of plain.body.historyEvents!) {
      expect(e).not.toHaveProperty('EventId');
      expect(e).not.toHaveProperty('IsPlayed');
    }

    const withOutput = await app.status(id, 'showHistory=true&showHistoryOutput=true');
    expect(withOutput.body.historyEvents![1]).toMatchObject({ Result: 'Hello CS' });
    expect(withOutput.body.historyEvents![2]).toMatchObject({ Result: 'Hello CS' });
  });
});

describe('5. fan-out/fan-in', () => {
  it('sums 10 parallel activities in order', async () => {
    const { id } = await app.start('fanOut', 10);
    const done = await app.waitDone(id);
    expect(done.output).toEqual({ sum: 110, results: [2, 4, 6, 8, 10, 12, 14, 16, 18, 20] });
  });
});

describe('6. synchronous start', () => {
  it('waitForCompletionOrCreateCheckStatusResponse answers 200 with the output', async () => {
    const res = await fetch(`${app.url}/api/sync/helloSequence`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello Cairo']);
  });

  it('the start endpoint waits with ?timeout= and returns the output', async () => {
    const res = await app.webhook(
      'POST',
      'orchestrators/helloSequence?timeout=20&pollingInterval=0.1',
      '"x"',
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello Cairo']);
  });
});

describe('7. human interaction', () => {
  it('approves when the event arrives before the timeout', async () => {
    const { id } = await app.start('approval', { timeoutMs: 60_000 });
    await app.waitUntil(id, (s) => s.runtimeStatus === 'Running');
    expect(await app.raise(id, 'Approval', { by: 'ana' })).toBe(202);
    const done = await app.waitDone(id);
    expect(done.output).toEqual({ result: 'approved', by: { by: 'ana' } });
  });

  it('escalates when the timer fires first, not before its time', async () => {
    const { id } = await app.start('approval', { timeoutMs: 1000 });
    const done = await app.waitDone(id, 20_000, 'showHistory=true');
    expect(done.output).toEqual({ result: 'escalated' });
    const created = done.historyEvents!.find((e) => e.EventType === 'TimerCreated')!;
    const fired = done.historyEvents!.find((e) => e.EventType === 'TimerFired')!;
    expect(Date.parse(String(fired.Timestamp))).toBeGreaterThanOrEqual(Date.parse(String(created.FireAt)));
  });
});

describe('8. monitor', () => {
  it('loops activity → timer; currentUtcDateTime advances by at least the timer interval', async () => {
    const { id } = await app.start('monitor');
    const times = (await app.waitDone(id)).output as string[];
    expect(times).toHaveLength(4);
    for (let i = 1; i < times.length; i++) {
      expect(Date.parse(times[i]!) - Date.parse(times[i - 1]!)).toBeGreaterThanOrEqual(300);
    }
  });
});

describe('9. activity retry', () => {
  it('the official sample: two failed attempts, a retry timer and a final timer; the orchestrator catches', async () => {
    const { id } = await app.start('callActivityWithRetry');
    const done = await app.waitDone(id, 20_000, 'showHistory=true');
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toBeNull();
    expect(done.customStatus).toEqual({
      caught: "Activity function 'alwaysFails' failed: FlakyFunction flaked ",
    });
    expect(eventTypes(done).filter((t) => t !== 'ExecutionStarted' && t !== 'ExecutionCompleted')).toEqual([
      'TaskFailed',
      'TimerCreated',
      'TimerFired',
      'TaskFailed',
      'TimerCreated',
      'TimerFired',
    ]);
  });

  it('succeeds on the third attempt with backoff: retry delays of 200 then 400 ms', async () => {
    const { id } = await app.start('retryThenSucceed');
    const done = await app.waitDone(id, 20_000, 'showHistory=true');
    expect(done.output).toBe('ok after 3');
    const timers = done.historyEvents!.filter((e) => e.EventType === 'TimerCreated');
    expect(timers.map((t) => Date.parse(String(t.FireAt)) - Date.parse(String(t.Timestamp)))).toEqual([
      200, 400,
    ]);
  });

  it('retries inside Task.all complete both tasks (ids allocated in history order)', async () => {
    const { id } = await app.start('parallelRetries');
    expect((await app.waitDone(id)).output).toEqual(['ok after 2', 'ok after 3']);
  });
});

describe('10. sub-orchestration retry', () => {
  it('reuses the fixed child id per attempt; the parent catches; the child is Failed with its message', async () => {
    const { id } = await app.start('callSubOrchestratorWithRetry');
    const done = await app.waitDone(id);
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toBeNull();
    expect(done.customStatus).toEqual({
      caught: "Orchestrator function 'throwsErrorInLine' failed: Something went wrong with Matter ",
    });
    const child = await app.status(`${id}:0`);
    expect(child.body).toMatchObject({
      runtimeStatus: 'Failed',
      output: "Orchestrator function 'throwsErrorInLine' failed: Something went wrong with Matter",
    });
  });
});

describe('11. timer cancel', () => {
  it('completes without waiting for the never-yielded one-hour timer', async () => {
    const { id } = await app.start('cancelTimer');
    const done = await app.waitDone(id, 20_000, 'showHistory=true');
    expect(done.output).toBe('Hello from the other side');
    expect(eventTypes(done)).not.toContain('TimerCreated');
  });
});

describe('12. continue-as-new', () => {
  it('counts to 3 across generations; the status input is the last generation input', async () => {
    const { id } = await app.start('counter', 0);
    const done = await app.waitDone(id);
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: 3, input: 3 });
  });

  it('an eternal orchestration consumes events across generations, then stops', async () => {
    const { id } = await app.start('eternalAdder', 0);
    await app.waitUntil(id, (s) => s.runtimeStatus === 'Running');
    expect(await app.raise(id, 'Add', 5)).toBe(202);
    await app.waitUntil(id, (s) => s.input === 5);
    expect(await app.raise(id, 'Add', 7)).toBe(202);
    await app.waitUntil(id, (s) => s.input === 12);
    expect(await app.raise(id, 'Stop', null)).toBe(202);
    expect((await app.waitDone(id)).output).toBe(12);
  });

  it('a string input is double-encoded in the next generation, as the extension does (documented)', async () => {
    const { id } = await app.start('continueWithString', 'x');
    expect((await app.waitDone(id)).output).toBe('"xa"');
  });
});

describe('13. terminate', () => {
  it('terminates a running instance with the reason as output; again ⇒ 410; unknown ⇒ 404', async () => {
    const check = await app.start('waitForever');
    await app.waitUntil(check.id, (s) => s.runtimeStatus === 'Running');
    const res = await fetch(check.terminatePostUri.replace('{text}', 'because'), { method: 'POST' });
    expect(res.status).toBe(202);
    const done = await app.waitDone(check.id);
    expect(done).toMatchObject({ runtimeStatus: 'Terminated', output: 'because' });
    expect((await fetch(check.terminatePostUri.replace('{text}', 'again'), { method: 'POST' })).status).toBe(
      410,
    );
    expect((await app.webhook('POST', 'instances/nope-nope/terminate?reason=x')).status).toBe(404);
    expect((await app.client('terminate', 'nope-nope')).body).toEqual({
      error: "No instance with ID 'nope-nope' found.",
    });
  });
});

describe('14. suspend and resume', () => {
  it('holds an event raised while suspended until resume', async () => {
    const { id } = await app.start('waitForEvent', { name: 'Go' });
    await app.waitUntil(id, (s) => eventTypes(s).includes('TaskCompleted'));
    expect((await app.client('suspend', id)).code).toBe(202);
    await app.waitUntil(id, (s) => s.runtimeStatus === 'Suspended');
    expect(await app.raise(id, 'Go', 'while-suspended')).toBe(202);
    await sleep(500);
    expect((await app.status(id)).body.runtimeStatus).toBe('Suspended');
    expect((await app.client('resume', id)).code).toBe(202);
    const done = await app.waitDone(id, 20_000, 'showHistory=true');
    expect(done.output).toEqual(['before', 'while-suspended']);
    expect(eventTypes(done)).toEqual(
      expect.arrayContaining(['ExecutionSuspended', 'ExecutionResumed', 'EventRaised']),
    );
  });
});

describe('15/16. external events', () => {
  it('buffers an event raised before the orchestrator waits for it', async () => {
    const { id } = await app.start('waitForEvent', { name: 'Early' });
    expect(await app.raise(id, 'Early', { n: 42 })).toBe(202);
    expect((await app.waitDone(id)).output).toEqual(['before', { n: 42 }]);
  });

  it('matches event names exactly: "approval" does not satisfy a wait for "Approval"', async () => {
    const { id } = await app.start('waitForEvent', { name: 'Approval' });
    expect(await app.raise(id, 'approval', 'lower')).toBe(202);
    const waiting = await app.waitUntil(id, (s) =>
      (s.historyEvents ?? []).some((e) => e.EventType === 'EventRaised' && e.Name === 'approval'),
    );
    expect(waiting.runtimeStatus).toBe('Running');
    expect(await app.raise(id, 'Approval', 'upper')).toBe(202);
    expect((await app.waitDone(id)).output).toEqual(['before', 'upper']);
  });
});

describe('17. orchestrator failure', () => {
  it('fails with the message, keeps the custom status; returnInternalServerErrorOnFailure ⇒ 500', async () => {
    const { id } = await app.start('failing');
    const done = await app.waitDone(id);
    expect(done).toMatchObject({
      runtimeStatus: 'Failed',
      output: "Orchestrator function 'failing' failed: kaboom",
      customStatus: { stage: 'before-boom' },
    });
    expect((await app.status(id)).code).toBe(200);
    expect((await app.status(id, 'returnInternalServerErrorOnFailure=true')).code).toBe(500);
  });
});

describe('18. instance id reuse', () => {
  it('rejects a running id with 500 and replaces a completed one', async () => {
    const running = `reuse-running-${Date.now()}`;
    await app.start('waitForever', undefined, running);
    const clash = await fetch(`${app.url}/api/start/waitForever/${running}`, { method: 'POST' });
    expect(clash.status).toBe(500);
    const direct = await app.webhook('POST', `orchestrators/waitForever/${running}`);
    expect(direct.status).toBe(500);
    expect(await direct.json()).toMatchObject({
      ExceptionMessage: expect.stringMatching(
        /An Orchestration instance with the status (Running|Pending) already exists/,
      ),
    });

    const done = `reuse-done-${Date.now()}`;
    await app.start('sayHelloWithCustomStatus', 'first', done);
    expect((await app.waitDone(done)).output).toBe('Hello first');
    await app.start('sayHelloWithCustomStatus', 'second', done);
    const second = await app.waitDone(done, 20_000, 'showHistory=true');
    expect(second).toMatchObject({ output: 'Hello second', input: 'second' });
    expect(eventTypes(second).filter((t) => t === 'ExecutionStarted')).toHaveLength(1);
  });
});

describe('19. query and purge', () => {
  it('lists running instances, purges one, then 404', async () => {
    const { id } = await app.start('waitForever');
    await app.waitUntil(id, (s) => s.runtimeStatus === 'Running');
    const running = (await app.client('running')).body as { instanceId: string; runtimeStatus: string }[];
    expect(running.map((s) => s.instanceId)).toContain(id);
    expect(new Set(running.map((s) => s.runtimeStatus))).toEqual(new Set(['Running']));
    expect((await app.client('purge', id)).body).toEqual({ instancesDeleted: 1 });
    expect((await app.status(id)).code).toBe(404);
    expect((await app.client('purge', id)).body).toEqual({ instancesDeleted: 0 });
  });

  it('purges by creation time and status filter; requires createdTimeFrom', async () => {
    const { id } = await app.start('helloSequence');
    await app.waitDone(id);
    expect((await app.webhook('DELETE', 'instances/?runtimeStatus=Completed')).status).toBe(400);
    const from = new Date(Date.now() - 60_000).toISOString();
    const res = await app.webhook('DELETE', `instances/?createdTimeFrom=${from}&runtimeStatus=Completed`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { instancesDeleted: number }).instancesDeleted).toBeGreaterThanOrEqual(1);
    expect((await app.status(id)).code).toBe(404);
  });
});

describe('20. client errors', () => {
  it('raiseEvent to an unknown instance rejects in the client', async () => {
    const res = await app.client('raise', 'no-such-instance', 'Go', 1);
    expect(res.code).toBe(500);
    expect(res.body).toEqual({ error: "No instance with ID 'no-such-instance' found." });
  });
});

describe('21. activity failure details', () => {
  it('surfaces ExceptionPropertiesProvider properties as a TaskFailedError', async () => {
    const { id } = await app.start('catchProperties');
    expect((await app.waitDone(id)).output).toEqual({
      name: 'TaskFailedError',
      message: 'QuotaError: quota exceeded',
      code: 42,
    });
  });
});

describe('22. determinism', () => {
  it('fails an orchestrator whose replay schedules a different activity, with the extension wording', async () => {
    const { id } = await app.start('nondeterministic');
    const done = await app.waitDone(id);
    expect(done.runtimeStatus).toBe('Failed');
    expect(done.output).toBe(
      "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity task with sequence number 0 named 'echo', but the current orchestration replay instead scheduled an activity task named 'other' with this sequence number.  Was a change made to the orchestrator code after this instance had already started running?",
    );
  });
});

describe('23. long timers', () => {
  it('splits a 5 s timer (max short 2 s, interval 1.5 s) into sub-timers and fires at the final time', async () => {
    const { id } = await app.start('longTimer');
    const done = await app.waitDone(id, 30_000, 'showHistory=true');
    expect(done.output).toBeGreaterThanOrEqual(5000);
    const timers = done.historyEvents!.filter((e) => e.EventType === 'TimerCreated');
    expect(timers.length).toBeGreaterThanOrEqual(3);
    const started = Date.parse(String(done.historyEvents![0]!.Timestamp));
    expect(Date.parse(String(timers[0]!.FireAt)) - started).toBe(1500);
    expect(Date.parse(String(timers[timers.length - 1]!.FireAt)) - started).toBe(5000);
  });
});

describe('restart', () => {
  it('restarts a finished instance with its input, under a new id or the same one', async () => {
    const { id } = await app.start('sayHelloWithCustomStatus', 'again');
    await app.waitDone(id);
    const fresh = await app.webhook('POST', `instances/${id}/restart`);
    expect(fresh.status).toBe(202);
    const next = (await fresh.json()) as { id: string };
    expect(next.id).not.toBe(id);
    expect(await app.waitDone(next.id)).toMatchObject({
      name: 'sayHelloWithCustomStatus',
      output: 'Hello again',
    });
    const same = await app.webhook('POST', `instances/${id}/restart?restartWithNewInstanceId=false`);
    expect(same.status).toBe(202);
    expect(((await same.json()) as { id: string }).id).toBe(id);
    expect(await app.waitDone(id)).toMatchObject({ output: 'Hello again' });
    expect((await app.webhook('POST', 'instances/never-was/restart')).status).toBe(400);
  });
});

describe('24. host plumbing', () => {
  it('createHttpManagementPayload uses the devhost origin (WEBSITE_HOSTNAME)', async () => {
    const res = await app.client('payload', 'abc');
    expect(res.body).toMatchObject({
      id: 'abc',
      statusQueryGetUri: `${app.url}/runtime/webhooks/durabletask/instances/abc?taskHub=ConformanceHub&connection=Storage`,
    });
  });

  it('rewind answers 501 and the client reports it; listing entities of an app without any answers []', async () => {
    const { id } = await app.start('failing');
    await app.waitDone(id);
    const res = await app.client('rewind', id);
    expect(res.code).toBe(500);
    expect((res.body as { error: string }).error).toMatch(/rewind operation is not supported by devhost/);
    // Listing entities is supported now (test/devhost/durable/entityListing.test.ts); this app has none.
    const listed = await app.webhook('GET', 'entities/counter');
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual([]);
    // Reading one entity is supported (test/devhost/durable/entities.test.ts); this app has none.
    expect((await app.webhook('GET', 'entities/counter/k1')).status).toBe(404);
  });
});
