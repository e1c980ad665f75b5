import { app, type InvocationContext, type Timer } from '@azure/functions';
import * as df from 'durable-functions';
import { PIPELINE_ORCHESTRATOR } from '../lib/contracts/pipeline';
import { runSchedules } from '../lib/pipelines/scheduler';
import type { Services } from '../lib/services';
import { withServices } from '../app/services';

/**
 * Every minute: starts the scheduled retraining runs that are due. Slots are claimed in Cosmos
 * first, so overlapping firings or a second host never start one slot twice.
 */
export const scheduleRetraining =
  (deps: Pick<Services, 'runs' | 'pipelines' | 'artifacts' | 'cosmos'>) =>
  async (timer: Timer, context: InvocationContext): Promise<void> => {
    const client = df.getClient(context);
    const decided = await runSchedules(
      {
        runs: deps.runs,
        pipelines: deps.pipelines,
        artifacts: deps.artifacts,
        cosmos: deps.cosmos,
        start: async (instanceId, input) =>
          void (await client.startNew(PIPELINE_ORCHESTRATOR, { instanceId, input })),
        log: (m) => context.log(m),
      },
      new Date(),
    );
    if (timer.isPastDue) context.log('schedule tick was past due (host was down or busy)');
    if (decided.length) context.log(`schedule: ${decided.length} slot(s) decided`);
  };

app.timer('scheduleRetraining', {
  schedule: '0 * * * * *',
  extraInputs: [df.input.durableClient()],
  handler: withServices(scheduleRetraining),
});
