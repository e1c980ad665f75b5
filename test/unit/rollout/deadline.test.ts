/**
 * A step's deadline (docs/rollout.md, "A step's deadline"): the deployment section's `maxSeconds` /
 * `maxStepSeconds` and their named errors, how rolloutStepsOf hands them to the rollout, the run
 * record's timed-out step, and the console's rollout view showing the deadline and the timeout.
 */
import { rolloutOf, rolloutSection } from '../../../lib/console/rollout';
import type { DeploymentSpecInput } from '../../../lib/contracts/rollout';
import { STEP_TIMED_OUT, deploymentSpecSchema, rolloutStepsOf } from '../../../lib/contracts/rollout';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import { readRunRollout, recordEnd, recordStep } from '../../../lib/rollout/runRecord';
import { uploadedRunDocument } from '../../support/runSample';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const issues = (spec: DeploymentSpecInput): string[] => {
  const r = deploymentSpecSchema.safeParse(spec);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('the deployment section: a step deadline', () => {
  it('is absent by default: no step times out, as before', () => {
    const spec = deploymentSpecSchema.parse({ strategy: 'canary' });
    expect(spec.maxStepSeconds).toBeUndefined();
    expect(rolloutStepsOf(spec).every((s) => s.maxSeconds === undefined)).toBe(true);
  });

  it('maxStepSeconds applies to every step without its own maxSeconds', () => {
    const spec = deploymentSpecSchema.parse({
      strategy: 'canary',
      maxStepSeconds: 7200,
      steps: [
        { percent: 5, minSeconds: 600 },
        { percent: 50, minSeconds: 600, maxSeconds: 900 },
        { percent: 100 },
      ],
    });
    expect(rolloutStepsOf(spec).map((s) => s.maxSeconds)).toEqual([7200, 900, 7200]);
    // The default steps get it too.
    const shadow = deploymentSpecSchema.parse({ strategy: 'shadow', maxStepSeconds: 3600 });
    expect(rolloutStepsOf(shadow)).toEqual([
      { percent: 100, minRequests: 200, minSeconds: 600, maxSeconds: 3600 },
    ]);
  });

  it('refuses a deadline shorter than the step’s minimum, naming the field', () => {
    expect(issues({ strategy: 'canary', steps: [{ percent: 5, minSeconds: 600, maxSeconds: 300 }] })).toEqual(
      ["steps.0.maxSeconds: must be at least the step's minSeconds: 300 s is shorter than step 0's 600 s"],
    );
    // The section's deadline against a step without its own; the default steps last 300 s at least.
    expect(
      issues({
        strategy: 'canary',
        maxStepSeconds: 400,
        steps: [
          { percent: 5, minSeconds: 300 },
          { percent: 100, minSeconds: 600 },
        ],
      }),
    ).toEqual([
      "maxStepSeconds: must be at least the step's minSeconds: 400 s is shorter than step 1's 600 s",
    ]);
    expect(issues({ strategy: 'canary', maxStepSeconds: 60 })[0]).toMatch(
      /^maxStepSeconds: .*step 0's 300 s/,
    );
    // A step's own deadline overrides the section's, so only that one is judged.
    expect(
      issues({
        strategy: 'canary',
        maxStepSeconds: 400,
        steps: [{ percent: 5, minSeconds: 600, maxSeconds: 600 }],
      }),
    ).toEqual([]);
  });

  it('refuses zero, negative, unknown fields and a deadline on a direct deployment', () => {
    expect(issues({ strategy: 'canary', steps: [{ percent: 5, maxSeconds: 0 }] })).toEqual([
      'steps.0.maxSeconds: must be more than 0',
    ]);
    expect(issues({ strategy: 'canary', maxStepSeconds: -5 })).toEqual([
      'maxStepSeconds: must be more than 0',
    ]);
    expect(issues({ strategy: 'direct', maxStepSeconds: 3600 })).toEqual([
      'maxStepSeconds: maxStepSeconds applies to the shadow and canary strategies only; direct has no steps',
    ]);
    expect(issues({ strategy: 'canary', steps: [{ percent: 5, maxWait: 10 } as never] })[0]).toMatch(
      /^steps\.0: Unrecognized key/,
    );
  });

  it('PUT /api/pipelines refuses it with the deployment field named', () => {
    const wages = JSON.parse(
      readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
    ) as Record<string, unknown>;
    const r = pipelineDefinitionSchema.safeParse({
      ...wages,
      deployment: { strategy: 'canary', steps: [{ percent: 5, minSeconds: 600, maxSeconds: 60 }] },
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.'))).toContain('deployment.steps.0.maxSeconds');
  });
});

describe('the run record and the console view of a deadline', () => {
  const fresh = readRunRollout(undefined, {
    rolloutId: 'run-1:rollout',
    modelName: 'churn',
    strategy: 'canary',
  });
  const started = recordStep(fresh, {
    step: 0,
    percent: 5,
    state: 'active',
    at: '2026-12-05T09:00:00.000Z',
    deadline: '2026-12-05T10:00:00.000Z',
  });

  const run = (rollout: RunDocument['rollout'] | object): RunDocument => ({
    ...uploadedRunDocument('run-1', 'churn', '2026-12-05T08:00:00.000Z'),
    rollout: rollout as RunDocument['rollout'],
  });

  it('records the step’s deadline, drops it while paused and moves it on resume', () => {
    expect(started.steps).toEqual([
      { step: 0, percent: 5, startedAt: '2026-12-05T09:00:00.000Z', deadline: '2026-12-05T10:00:00.000Z' },
    ]);
    const paused = recordStep(started, {
      step: 0,
      percent: 5,
      state: 'paused',
      at: '2026-12-05T09:10:00.000Z',
      deadline: null,
    });
    expect(paused.steps[0]!.deadline).toBeUndefined();
    const resumed = recordStep(paused, {
      step: 0,
      percent: 5,
      state: 'active',
      at: '2026-12-05T09:40:00.000Z',
      deadline: '2026-12-05T10:30:00.000Z',
    });
    expect(resumed.steps[0]!.deadline).toBe('2026-12-05T10:30:00.000Z');
    // A note that says nothing of the deadline leaves it.
    expect(
      recordStep(resumed, { step: 0, percent: 5, state: 'active', at: 'x', note: 'n' }).steps[0]!.deadline,
    ).toBe('2026-12-05T10:30:00.000Z');
  });

  it('shows when the live step times out', () => {
    const html = rolloutSection(rolloutOf(run(started))!).toString();
    expect(html).toContain('data-rollout-deadline="2026-12-05T10:00:00.000Z"');
    expect(html).toMatch(/times out and rolls back at/);
  });

  it('a timed-out step ends `timed_out`, the rollout `rolled_back` with the code, shown as such', () => {
    const ended = recordEnd(started, {
      outcome: 'rolled_back',
      reason: 'step 1 did not pass within its deadline of 1 h: it had 12 of 100 candidate requests',
      step: 0,
      at: '2026-12-05T10:00:00.000Z',
      code: STEP_TIMED_OUT,
    });
    expect(ended).toMatchObject({ outcome: 'rolled_back', code: 'step_timed_out', state: 'rolled_back' });
    expect(ended.steps[0]).toMatchObject({ outcome: 'timed_out', endedAt: '2026-12-05T10:00:00.000Z' });
    const html = rolloutSection(rolloutOf(run(ended))!).toString();
    expect(html).toContain('data-rollout-code="step_timed_out"');
    expect(html).toContain('step timed out');
    expect(html).toContain('12 of 100 candidate requests');
    expect(html).not.toContain('data-rollout-deadline');
  });
});
