/**
 * The pipeline's ending when evaluation finds the production model collapsed on the run's data:
 * stopped with its own reason (the data is suspect, not the candidate), never registered.
 */
import { drivePipeline } from '../../support/pipelineDriver';
import { happyScript, pipelineInput } from '../../support/pipelineScript';

const collapsed =
  'the production model scores 0.44 on this data against 0.98 when it was approved: check the labels and the data';

function evaluation(reasons: { check: string; passed: boolean; message: string }[]) {
  const happy = happyScript().evaluateModel!(
    undefined as never,
    { kind: 'activity', name: '', input: {} },
    1,
  );
  return { ...(happy as object), passed: reasons.every((r) => r.passed), reasons };
}

describe('trainingPipeline and champion_collapsed', () => {
  it('stops with champion_collapsed and the message, before registering', async () => {
    const out = evaluation([
      { check: 'champion_collapsed', passed: false, message: collapsed },
      { check: 'non_inferiority', passed: true, message: 'improvement 0.0035' },
    ]);
    const r = await drivePipeline(pipelineInput(3), happyScript({ evaluateModel: () => out }));
    expect(r.run).toMatchObject({ status: 'stopped', stopReason: 'champion_collapsed', reason: collapsed });
    const step = r.run.steps.find((s) => s.name === 'evaluate')!;
    expect(step.error).toEqual({ code: 'champion_collapsed', message: collapsed });
    expect(r.calls.map((c) => c.name)).not.toContain('registerModel');
  });

  it('keeps evaluation_failed when the candidate itself fails', async () => {
    const out = evaluation([{ check: 'superiority', passed: false, message: 'not better' }]);
    const r = await drivePipeline(pipelineInput(3), happyScript({ evaluateModel: () => out }));
    expect(r.run).toMatchObject({ status: 'stopped', stopReason: 'evaluation_failed' });
  });
});
