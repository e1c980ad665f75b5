/**
 * Captures golden histories: runs a few fixture orchestrations on a real devhost, reads the raw
 * histories devhost persisted (the exact events the library was given) and writes them to
 * test/fixtures/golden/<name>.json. Re-run after a deliberate change of the history format:
 *
 *   npx tsc -p . && node dist/test/devhost/durable/support/captureGolden.js
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { TaskHubStore } from '../../../../devhost/durable/store';
import { startDurableApp } from './durableApp';

const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

interface Run {
  file: string;
  orchestrator: string;
  input?: unknown;
  event?: { name: string; data: unknown };
}

const runs: Run[] = [
  { file: 'helloSequence', orchestrator: 'helloSequence' },
  { file: 'fanOut', orchestrator: 'fanOut', input: 5 },
  { file: 'retryThenSucceed', orchestrator: 'retryThenSucceed' },
  { file: 'parallelRetries', orchestrator: 'parallelRetries' },
  {
    file: 'approval',
    orchestrator: 'approval',
    input: { timeoutMs: 60_000 },
    event: { name: 'Approval', data: 'yes' },
  },
  { file: 'subOrchestration', orchestrator: 'sayHelloWithSubOrchestrator', input: 'World' },
  { file: 'callActivityWithRetry', orchestrator: 'callActivityWithRetry' },
];

async function main(): Promise<void> {
  const app = await startDurableApp({ persistent: true });
  try {
    const ids = new Map<string, string>();
    for (const run of runs) {
      const { id } = await app.start(run.orchestrator, run.input, `golden-${run.file}`);
      if (run.event) {
        await app.waitUntil(id, (s) => s.runtimeStatus === 'Running');
        await app.raise(id, run.event.name, run.event.data);
      }
      const done = await app.waitDone(id);
      if (done.runtimeStatus !== 'Completed') throw new Error(`${run.file}: ${JSON.stringify(done)}`);
      ids.set(run.file, id);
    }
    const port = /Azurite is ready .*table=(\d+)/.exec(app.devhost.output())?.[1];
    if (!port) throw new Error('devhost did not report the Azurite table port');
    const store = await TaskHubStore.open(
      `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
      'ConformanceHub',
    );
    const loaded = await store.loadAll();
    for (const run of runs) {
      const inst = loaded.find((l) => l.record.instanceId === ids.get(run.file));
      if (!inst) throw new Error(`${run.file} not found in the task hub`);
      const completed = inst.history.find((e) => e.EventType === 1);
      const golden = {
        orchestrator: run.orchestrator,
        instanceId: inst.record.instanceId,
        input: inst.record.input === null ? null : (JSON.parse(inst.record.input) as unknown),
        output: JSON.parse(completed?.Result ?? 'null') as unknown,
        history: inst.history,
      };
      const file = path.resolve(
        __dirname,
        '..',
        '..',
        '..',
        '..',
        '..',
        'test',
        'fixtures',
        'golden',
        `${run.file}.json`,
      );
      writeFileSync(file, `${JSON.stringify(golden, null, 1)}\n`);
      console.log(`wrote ${file} (${inst.history.length} events)`);
    }
  } finally {
    await app.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
