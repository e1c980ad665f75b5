/**
 * Crash safety: devhost is SIGKILLed while a chain is inside a slow activity and while orchestrations
 * wait for an event raced by a timer; after a restart on the same data folder each one completes with the
 * right output. An event raised while devhost is down-and-restarting is not lost.
 */
import { type DurableApp, startDurableApp } from './support/durableApp';

let app: DurableApp;

beforeAll(async () => {
  app = await startDurableApp({ persistent: true });
}, 90_000);

afterAll(async () => {
  await app?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function raiseWhenUp(id: string, event: string, data: unknown): Promise<number> {
  for (let i = 0; i < 600; i++) {
    try {
      const code = await app.raise(id, event, data);
      if (code !== 503) return code;
    } catch {
      // devhost is down: retry until it answers
    }
    await sleep(100);
  }
  throw new Error('devhost did not come back');
}

it('resumes a chain killed inside a slow activity, re-runs the interrupted step and completes', async () => {
  const { id } = await app.start('slowChain', { steps: 3, ms: 1500 });
  // Wait until the first step has completed and the second is running.
  await app.waitUntil(
    id,
    (s) => (s.historyEvents ?? []).filter((e) => e.EventType === 'TaskCompleted').length === 1,
  );
  await app.devhost.kill();
  await app.restart();
  const done = await app.waitDone(id, 30_000, 'showHistory=true');
  expect(done).toMatchObject({ runtimeStatus: 'Completed', output: 3 });
  const completions = (done.historyEvents ?? []).filter((e) => e.EventType === 'TaskCompleted');
  expect(completions).toHaveLength(3);
}, 90_000);

it('re-arms timers and keeps an event raised while devhost is restarting', async () => {
  const byTimer = await app.start('eventOrTimer', { timeoutMs: 2500 });
  const byEvent = await app.start('eventOrTimer', { timeoutMs: 120_000 });
  const waitingStarted = async (id: string): Promise<void> => {
    await app.waitUntil(id, (s) => (s.historyEvents ?? []).some((e) => e.EventType === 'TimerCreated'));
  };
  await waitingStarted(byTimer.id);
  await waitingStarted(byEvent.id);

  await app.devhost.kill();
  // Raise the event while devhost is down and restarting: the first accepted attempt must count.
  const restarting = app.restart();
  const raised = raiseWhenUp(byEvent.id, 'Wake', { by: 'restart' });
  await restarting;
  expect(await raised).toBe(202);

  const timerDone = await app.waitDone(byTimer.id, 30_000);
  expect(timerDone).toMatchObject({ runtimeStatus: 'Completed', output: { woke: 'timer' } });
  const eventDone = await app.waitDone(byEvent.id, 30_000, 'showHistory=true');
  expect(eventDone).toMatchObject({ runtimeStatus: 'Completed', output: { woke: { by: 'restart' } } });
  expect((eventDone.historyEvents ?? []).filter((e) => e.EventType === 'EventRaised')).toHaveLength(1);
}, 90_000);

it('keeps an acknowledged event when devhost is killed right after accepting it', async () => {
  const { id } = await app.start('eventOrTimer', { timeoutMs: 120_000 });
  await app.waitUntil(id, (s) => (s.historyEvents ?? []).some((e) => e.EventType === 'TimerCreated'));
  expect(await app.raise(id, 'Wake', 'acknowledged')).toBe(202);
  await app.devhost.kill();
  await app.restart();
  expect(await app.waitDone(id, 30_000)).toMatchObject({ output: { woke: 'acknowledged' } });
}, 90_000);

it('re-links a parent to the sub-orchestration it was waiting on', async () => {
  const { id } = await app.start('parentOfSlow', { steps: 2, ms: 1500 });
  await app.waitUntil(`${id}-slow`, (s) =>
    (s.historyEvents ?? []).some((e) => e.EventType === 'TaskCompleted'),
  );
  await app.devhost.kill();
  await app.restart();
  expect(await app.waitDone(id, 30_000)).toMatchObject({
    runtimeStatus: 'Completed',
    output: { childSteps: 2 },
  });
  expect((await app.status(`${id}-slow`)).body).toMatchObject({ runtimeStatus: 'Completed', output: 2 });
}, 90_000);

it('finished instances stay finished after a restart', async () => {
  const { id } = await app.start('helloSequence');
  const before = await app.waitDone(id);
  await app.devhost.kill();
  await app.restart();
  const after = await app.status(id);
  expect(after.code).toBe(200);
  expect(after.body).toEqual(before);
}, 90_000);
