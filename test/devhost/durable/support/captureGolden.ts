/**
 * Captures golden histories: runs a few fixture orchestrations on a real devhost, reads the raw
 * histories devhost persisted (the exact events the library was given) and writes them to
 * test/fixtures/golden/<name>.json. Re-run after a deliberate change of the history format:
 *
 *   npx tsc -p . && node dist/test/devhost/durable/support/captureGolden.js
 */
import { startDurableApp } from './durableApp';
import { type CapturedRun, writeGoldens } from './writeGoldens';

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
    const captured: CapturedRun[] = [];
    for (const run of runs) {
      const { id } = await app.start(run.orchestrator, run.input, `golden-${run.file}`);
      if (run.event) {
        await app.waitUntil(id, (s) => s.runtimeStatus === 'Running');
        await app.raise(id, run.event.name, run.event.data);
      }
      const done = await app.waitDone(id);
      if (done.runtimeStatus !== 'Completed') throw new Error(`${run.file}: ${JSON.stringify(done)}`);
      captured.push({ name: run.file, orchestrator: run.orchestrator, instanceId: id });
    }
    await writeGoldens({
      dataDir: app.dataDir!,
      taskHub: 'ConformanceHub',
      folder: 'golden',
      runs: captured,
    });
  } finally {
    await app.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
