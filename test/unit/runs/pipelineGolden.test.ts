/**
 * Recorded histories of trainingPipeline, replayed against today's code.
 *
 * Why: a pipeline run lives for days (it waits for people at the approval gate), and when new code
 * is deployed, the Durable host replays each in-flight run's recorded history through the NEW
 * orchestrator function. If that code asks for different work at the same point (another activity,
 * one call fewer or more, another order), the run fails with a non-determinism error, or worse,
 * results land on the wrong `yield`. These histories were recorded from real devhost runs
 * (test/e2e/pipeline/captureGolden.ts) and are exactly what such runs hold; a change that fails here
 * must version the orchestrator (a new `revision` of the run input, the old path kept for old runs)
 * instead of changing what old runs replay.
 *
 * The orchestrator is the one registered under `trainingPipeline` by orchestrators/trainingPipeline.ts,
 * as the Functions host finds it by the name in the history: whatever that file dispatches to for a
 * run's revision is what is replayed. Files are named `r<revision>-<scenario>.json`; recordings of a
 * new revision are added beside the old ones and are checked the same way.
 */
import { loadApp } from '../../devhost/durable/support/sdkDriver';
import {
  expectRecordedWorkPerEpisode,
  expectTamperNoticed,
  loadRecorded,
  replayAll,
} from '../../support/orchestrationGoldens';

const goldens = loadRecorded('pipeline-golden');
const app = loadApp(['orchestrators/trainingPipeline.ts']);

interface RunOutput {
  status: string;
  stopReason?: string;
}
const outcome = (output: unknown) => {
  const o = output as RunOutput;
  return [o.status, o.stopReason].filter(Boolean).join(':');
};

it('has a recorded revision-3 and revision-2 run for every way a run ends, and a revision-1 run', () => {
  expect(goldens.map(([name, g]) => [name, outcome(g.output)])).toEqual(
    expect.arrayContaining([
      ['r1-approvedDeployed', 'succeeded'],
      ['r2-approvedDeployed', 'succeeded'],
      ['r2-validationStopped', 'stopped:validation_failed'],
      ['r2-evaluationStopped', 'stopped:evaluation_failed'],
      ['r2-approvalRejected', 'stopped:approval_rejected'],
      ['r2-approvalTimedOut', 'stopped:approval_timed_out'],
      ['r2-trainingFailed', 'failed:training_failed'],
      ['r2-jobCanceled', 'canceled:canceled'],
      ['r3-approvedDeployed', 'succeeded'],
      ['r3-validationStopped', 'stopped:validation_failed'],
      ['r3-evaluationStopped', 'stopped:evaluation_failed'],
      ['r3-approvalRejected', 'stopped:approval_rejected'],
      ['r3-approvalTimedOut', 'stopped:approval_timed_out'],
      ['r3-trainingFailed', 'failed:training_failed'],
      ['r3-jobCanceled', 'canceled:canceled'],
      ['r4-approvedDeployed', 'succeeded'],
      ['r4-validationStopped', 'stopped:validation_failed'],
      ['r4-evaluationStopped', 'stopped:evaluation_failed'],
      ['r4-approvalRejected', 'stopped:approval_rejected'],
      ['r4-approvalTimedOut', 'stopped:approval_timed_out'],
      ['r4-trainingFailed', 'failed:training_failed'],
      ['r4-jobCanceled', 'canceled:canceled'],
    ]),
  );
});

it('registers trainingPipeline as an orchestration', () => {
  expect(app.functions.get('trainingpipeline')?.kind).toBe('orchestration');
});

describe.each(goldens)('trainingPipeline recorded run %s', (name, g) => {
  it('is named after the revision it was started with', () => {
    expect(g.orchestrator).toBe('trainingPipeline');
    expect(name).toMatch(new RegExp(`^r${(g.input as { revision?: number }).revision ?? 1}-`));
  });

  it('replays to the recorded output and custom status', async () => {
    const r = await replayAll(app, g);
    expect(r.state?.isDone).toBe(true);
    expect(r.state?.output).toEqual(g.output);
    expect(r.state?.customStatus).toEqual(g.customStatus);
  });

  it('asks, episode by episode, for exactly the work recorded at the same ids', async () => {
    await expectRecordedWorkPerEpisode(app, g);
  });

  it('notices a history that does not fit the code (first activity renamed)', async () => {
    await expectTamperNoticed(app, g);
  });

  it('stays small: under 200 history events', () => {
    expect(g.history.length).toBeLessThan(200);
  });
});
