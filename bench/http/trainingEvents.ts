/**
 * One large training-events delivery through devhost: EVENTS (default 5,000) Event Grid job events,
 * each for a different job id Sluice did not start, in one POST of about 1 MB (the most Event Grid
 * sends). Prints the wall time of the answer, which is the cost of looking every job up.
 *
 *   npm run build && node dist/bench/http/trainingEvents.js       (EVENTS=5000)
 */
import { repoRoot, startDevhost } from '../../test/support/devhost';

const count = Number(process.env.EVENTS ?? 5000);

async function main(): Promise<void> {
  const host = await startDevhost({ app: repoRoot, readyTimeoutMs: 120_000 });
  if (!process.env.BENCH_LOG) host.discardOutput();
  try {
    const events = Array.from({ length: count }, (_, i) => {
      const jobId = `sluice-${i.toString(36).padStart(4, '0')}`;
      return {
        subject: `experiments/e/runs/${jobId}`,
        eventType: 'Microsoft.MachineLearningServices.RunCompleted',
        eventTime: '2026-12-05T00:00:00Z',
        id: `e${i}`,
        data: { runId: jobId, runStatus: 'Completed' },
      };
    });
    const body = JSON.stringify(events);
    const post = () =>
      fetch(`${host.url}/api/events/training`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    await (await post()).text(); // warm-up (loads the app's stores)
    const started = performance.now();
    const res = await post();
    const answer = (await res.json()) as { received?: number; ignored?: unknown[]; code?: string };
    const ms = performance.now() - started;
    console.log(
      `bench:trainingEvents  one delivery of ${count} job events, ${(body.length / 1024).toFixed(0)} KB`,
    );
    console.log(
      `answer ${res.status} after ${ms.toFixed(0)} ms (received ${String(answer.received ?? answer.code)}, ignored ${answer.ignored?.length ?? '-'})`,
    );
  } finally {
    if (process.env.BENCH_LOG) console.log(host.output().slice(-3000));
    await host.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
