/**
 * host.json concurrency limits: `maxConcurrentActivityFunctions` bounds how many activities run at
 * once (across instances); `maxConcurrentOrchestratorFunctions` bounds episodes, which must still let
 * several instances make progress.
 */
import { type DurableApp, startDurableApp } from './support/durableApp';

let app: DurableApp;

beforeAll(async () => {
  app = await startDurableApp({ app: 'test/fixtures/durable-limits' });
}, 90_000);

afterAll(async () => {
  await app?.stop();
});

it('runs at most maxConcurrentActivityFunctions (2) activities at once, across three instances', async () => {
  const ids = await Promise.all([1, 2, 3].map(() => app.start('fanOutMeasured')));
  const outputs = await Promise.all(ids.map(({ id }) => app.waitDone(id, 60_000)));
  for (const done of outputs) expect(done.runtimeStatus).toBe('Completed');
  // Each orchestration returns the highest concurrency any activity observed.
  expect(Math.max(...outputs.map((o) => o.output as number))).toBe(2);
});
