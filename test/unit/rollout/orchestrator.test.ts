/**
 * The rollout orchestrator run in-process with scripted activities (docs/rollout.md): a minimal
 * stand-in for the Durable context that answers each scheduled task at once. Timers fire at their
 * time (the clock jumps there) unless the script raises the operator's event first; continueAsNew
 * starts the body over with the new input, as the Durable runtime does. It measures what the body
 * asks for, not replay safety.
 */
import type { OrchestrationContext } from 'durable-functions';
import type { RolloutInput, RolloutOutput, TrafficFigures } from '../../../lib/contracts/rollout';
import { ROLLOUT_CHECKS_PER_EXECUTION, rolloutGuardsSchema } from '../../../lib/contracts/rollout';
import { rollout } from '../../../orchestrators/rollout';
import { failure } from '../../support/pipelineScript';

interface Call {
  name: string;
  input: Record<string, unknown>;
  execution: number;
}
type Task =
  | { kind: 'activity'; name: string; input: Record<string, unknown> }
  | { kind: 'timer'; fireAt: Date; cancel: () => void }
  | { kind: 'event'; name: string }
  | { kind: 'any'; tasks: Task[] };

/** Answers an activity call; `{ throw }` for a call whose retries ran out. */
type Script = Record<string, (input: Record<string, unknown>, count: number) => unknown>;

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const digest = (c: string) => c.repeat(64);

function figures(requests: number): TrafficFigures {
  return {
    requests,
    errors: 0,
    errorRate: requests > 0 ? 0 : null,
    latencyP99Ms: requests > 0 ? 5 : null,
    predictedRows: requests,
    psi: null,
    compared: 0,
    agreement: null,
    productionRequests: requests * 3,
  };
}

function rolloutInput(over: Partial<RolloutInput> = {}): RolloutInput {
  return {
    runId: 'run-1',
    pipeline: 'wages',
    approvalId: 'run-1:approval',
    deploymentId: 'exec-1',
    candidate: { modelName: 'wages', modelVersion: 2, modelDigest: digest('b'), datasetDigest: digest('d') },
    expectedProduction: 1,
    strategy: 'canary',
    steps: [
      { percent: 10, minRequests: 50, minSeconds: 60 },
      { percent: 100, minRequests: 50, minSeconds: 60 },
    ],
    guards: rolloutGuardsSchema.parse({ minSamples: 20 }),
    checkEverySeconds: 10,
    ...over,
  };
}

const deployed = {
  modelName: 'wages',
  version: 2,
  previous: 1,
  moved: true,
  aliasMoveSeq: 1,
  deployedAt: new Date(T0).toISOString(),
  recordedOnRun: true,
};

/** Every check sees `requests` (per check count) and no operator request unless `control` says. */
function baseScript(over: Partial<Script> = {}): Script {
  return {
    startRollout: () => ({ holdoutRows: 100, productionVersion: 1 }),
    setRolloutStep: () => ({ updated: true }),
    checkRolloutGuards: () => ({ figures: figures(100), breaches: [] }),
    endRollout: () => ({ ended: true, notified: 1 }),
    deployModel: () => deployed,
    ...over,
  } as Script;
}

interface Driven {
  output: RolloutOutput;
  calls: Call[];
  executions: number;
  /** The most tasks one execution scheduled (its history grows with them). */
  maxTasksPerExecution: number;
}

/**
 * Drives the orchestrator to its end. `wake(checkCount)` says whether the operator's event comes
 * before the next timer (the check that follows is then number checkCount + 1).
 */
function drive(input: RolloutInput, script: Script, wake: (checks: number) => boolean = () => false): Driven {
  let clock = T0;
  let current: unknown = input;
  const calls: Call[] = [];
  const counts = new Map<string, number>();
  let executions = 0;
  let maxTasks = 0;
  for (;;) {
    executions++;
    if (executions > 1_000) throw new Error('too many executions');
    let continued: unknown;
    let tasks = 0;
    const context = {
      log: () => undefined,
      df: {
        instanceId: 'run-1:rollout',
        isReplaying: false,
        get currentUtcDateTime() {
          return new Date(clock);
        },
        getInput: () => current,
        continueAsNew: (next: unknown) => (continued = next),
        callActivityWithRetry: (
          name: string,
          _retry: unknown,
          activityInput: Record<string, unknown>,
        ): Task => ({
          kind: 'activity',
          name,
          input: activityInput,
        }),
        createTimer: (fireAt: Date): Task => ({ kind: 'timer', fireAt, cancel: () => undefined }),
        waitForExternalEvent: (name: string): Task => ({ kind: 'event', name }),
        Task: { any: (ts: Task[]): Task => ({ kind: 'any', tasks: ts }) },
      },
    } as unknown as OrchestrationContext;
    const gen = rollout(context) as Generator<Task, RolloutOutput, unknown>;
    let next = gen.next();
    while (!next.done) {
      const task = next.value;
      tasks++;
      if (tasks > 100_000) throw new Error('runaway orchestration');
      if (task.kind === 'any') {
        const [timer, event] = task.tasks as [Extract<Task, { kind: 'timer' }>, Task];
        const checks = counts.get('checkRolloutGuards') ?? 0;
        if (wake(checks)) {
          next = gen.next(event);
        } else {
          clock = Math.max(clock, timer.fireAt.getTime());
          next = gen.next(timer);
        }
        continue;
      }
      if (task.kind !== 'activity') throw new Error(`unexpected ${task.kind}`);
      const count = (counts.get(task.name) ?? 0) + 1;
      counts.set(task.name, count);
      calls.push({ name: task.name, input: task.input, execution: executions });
      const handler = script[task.name];
      if (!handler) throw new Error(`the script does not answer ${task.name}`);
      const answer = handler(task.input, count);
      if (answer && typeof answer === 'object' && 'throw' in answer)
        next = gen.throw((answer as { throw: Error }).throw);
      else next = gen.next(answer);
    }
    maxTasks = Math.max(maxTasks, tasks);
    if (continued === undefined)
      return { output: next.value, calls, executions, maxTasksPerExecution: maxTasks };
    current = JSON.parse(JSON.stringify(continued));
  }
}

const names = (d: Driven) => d.calls.map((c) => c.name);
const control = (action: string, seq: number) => ({
  action,
  seq,
  by: 'ops@example.com',
  at: new Date(T0).toISOString(),
});

describe('rollout orchestrator', () => {
  it('passes every step, then moves production once and ends completed', () => {
    const d = drive(rolloutInput(), baseScript());
    expect(d.output).toMatchObject({ outcome: 'completed', step: 1, deployment: { version: 2 } });
    expect(names(d).filter((n) => n === 'deployModel')).toHaveLength(1);
    expect(d.calls.filter((c) => c.name === 'setRolloutStep').map((c) => c.input.percent)).toEqual([10, 100]);
    expect(d.calls.at(-1)).toMatchObject({ name: 'endRollout', input: { outcome: 'completed' } });
  });

  it('a breached guard rolls back at once: no further step, production never moves, the breach recorded', () => {
    const breach = {
      guard: 'maxErrorRate' as const,
      value: 0.2,
      limit: 0.05,
      message: 'error rate 20 % over 100 requests is above 5 %',
    };
    const d = drive(
      rolloutInput(),
      baseScript({
        checkRolloutGuards: (_i, n) => ({ figures: figures(100), breaches: n >= 2 ? [breach] : [] }),
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'rolled_back', step: 0, breaches: [breach] });
    expect(d.output.reason).toContain(breach.message);
    expect(names(d)).not.toContain('deployModel');
    expect(d.calls.filter((c) => c.name === 'setRolloutStep').map((c) => c.input.percent)).toEqual([10]);
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(2);
    expect(d.calls.at(-1)).toMatchObject({
      name: 'endRollout',
      input: { outcome: 'rolled_back', step: 0, breaches: [breach] },
    });
  });

  it('abort mid-step: ends aborted with who asked, and production never moves', () => {
    const d = drive(
      rolloutInput(),
      baseScript({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(5),
          breaches: [],
          ...(n >= 2 ? { control: control('abort', 1) } : {}),
        }),
      }),
      (checks) => checks === 1,
    );
    expect(d.output).toMatchObject({ outcome: 'aborted', step: 0, reason: 'aborted by ops@example.com' });
    expect(names(d)).not.toContain('deployModel');
    expect(d.calls.at(-1)).toMatchObject({ name: 'endRollout', input: { outcome: 'aborted', step: 0 } });
  });

  it('promote: production moves at once, in the step it was in', () => {
    const d = drive(
      rolloutInput(),
      baseScript({
        checkRolloutGuards: () => ({ figures: figures(3), breaches: [], control: control('promote', 1) }),
      }),
    );
    expect(d.output).toMatchObject({
      outcome: 'completed',
      step: 0,
      reason: expect.stringContaining('promoted by'),
    });
    expect(names(d)).toEqual([
      'startRollout',
      'setRolloutStep',
      'checkRolloutGuards',
      'deployModel',
      'endRollout',
    ]);
  });

  it('pause then resume: a paused step does not pass; it goes on once resumed', () => {
    // Checks 1-3 see the pause (applied once), 4 on the resume; enough requests all along.
    const d = drive(
      rolloutInput({ steps: [{ percent: 10, minRequests: 50, minSeconds: 0 }] }),
      baseScript({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(100),
          breaches: [],
          control: n <= 3 ? control('pause', 1) : control('resume', 2),
        }),
      }),
    );
    const steps = d.calls.filter((c) => c.name === 'setRolloutStep').map((c) => c.input.state);
    expect(steps).toEqual(['active', 'paused', 'active']);
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(4);
    expect(d.output).toMatchObject({ outcome: 'completed' });
  });

  it('a step never passes on fewer requests than guards.minSamples, whatever minRequests says', () => {
    // minRequests 0, minSamples 20: 10 requests do not pass the step; 25 do.
    const d = drive(
      rolloutInput({ steps: [{ percent: 10, minRequests: 0, minSeconds: 0 }] }),
      baseScript({
        checkRolloutGuards: (_i, n) => ({ figures: figures(n < 5 ? 10 : 25), breaches: [] }),
      }),
    );
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(5);
    expect(d.output).toMatchObject({ outcome: 'completed', figures: { requests: 25 } });
  });

  it('an activity failing mid-rollout ends the rollout aborted (rollout_failed), never leaving it live', () => {
    const d = drive(
      rolloutInput(),
      baseScript({
        checkRolloutGuards: (_i, n) =>
          n === 3 ? { throw: new Error('cosmos unavailable') } : { figures: figures(5), breaches: [] },
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'aborted', code: 'rollout_failed', step: 0 });
    expect(d.output.reason).toMatch(/^rollout failed: cosmos unavailable/);
    expect(names(d)).not.toContain('deployModel');
    expect(d.calls.at(-1)).toMatchObject({ name: 'endRollout', input: { outcome: 'aborted' } });
  });

  it('a refusal mid-rollout (the run was canceled) ends it aborted with the refusal code', () => {
    const d = drive(
      rolloutInput(),
      baseScript({
        setRolloutStep: (_i, n) =>
          n === 2 ? failure('run_canceled', 'run run-1 is being canceled') : { updated: true },
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'aborted', code: 'run_canceled', step: 1 });
    expect(names(d)).not.toContain('deployModel');
    expect(d.calls.at(-1)).toMatchObject({ name: 'endRollout', input: { outcome: 'aborted' } });
  });

  it('an endRollout that fails after a failure still returns aborted (reconciliation ends the document)', () => {
    const d = drive(
      rolloutInput(),
      baseScript({
        setRolloutStep: () => ({ throw: new Error('boom') }),
        endRollout: () => ({ throw: new Error('still down') }),
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'aborted', code: 'rollout_failed' });
  });

  it('canceled while the rollout starts: refused before traffic moves, production untouched', () => {
    const d = drive(
      rolloutInput(),
      baseScript({
        startRollout: () => failure('run_canceled', 'run run-1 is being canceled; nothing was rolled out'),
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'aborted', code: 'run_canceled', step: 0 });
    expect(names(d)).toEqual(['startRollout']);
  });

  it('canceled before production moves: deployModel refuses, the rollout ends aborted', () => {
    const d = drive(
      rolloutInput({ steps: [{ percent: 10, minRequests: 20, minSeconds: 0 }] }),
      baseScript({ deployModel: () => failure('run_canceled', 'run run-1 is being canceled') }),
    );
    expect(d.output).toMatchObject({ outcome: 'aborted', code: 'run_canceled' });
    expect(d.calls.at(-1)).toMatchObject({ name: 'endRollout', input: { outcome: 'aborted' } });
  });

  it('bounds its history: continues as new at each step boundary and every N checks, keeping its place', () => {
    // Step 1 needs 250 checks (requests grow 1 per check; minRequests 250), step 2 passes at once.
    let checks = 0;
    const d = drive(
      rolloutInput({
        steps: [
          { percent: 10, minRequests: 250, minSeconds: 0 },
          { percent: 100, minRequests: 20, minSeconds: 0 },
        ],
      }),
      baseScript({
        checkRolloutGuards: (i) => {
          checks++;
          return {
            figures: figures(i.step === 0 ? checks : 100),
            breaches: [],
            // A pause and resume early on: carried across executions (applied once each).
            ...(checks >= 2 ? { control: control(checks < 4 ? 'pause' : 'resume', checks < 4 ? 1 : 2) } : {}),
          };
        },
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'completed', step: 1 });
    // 250 checks in step 1: three executions (100, 100, 50), then one for step 2.
    expect(d.executions).toBe(4);
    expect(d.maxTasksPerExecution).toBeLessThanOrEqual(2 * ROLLOUT_CHECKS_PER_EXECUTION + 5);
    expect(names(d).filter((n) => n === 'startRollout')).toHaveLength(1);
    // The step's share is set once per step (plus the pause and the resume), not per execution.
    expect(
      d.calls.filter((c) => c.name === 'setRolloutStep').map((c) => [c.input.step, c.input.state]),
    ).toEqual([
      [0, 'active'],
      [0, 'paused'],
      [0, 'active'],
      [1, 'active'],
    ]);
    expect(
      d.calls.find((c) => c.name === 'setRolloutStep' && c.input.step === 1)?.input.passed,
    ).toMatchObject({
      step: 0,
      figures: { requests: 250 },
    });
    expect(names(d).filter((n) => n === 'deployModel')).toHaveLength(1);
  });

  it('a continued step keeps its start: minSeconds counts from when the step began', () => {
    // minSeconds 1500 with a check every 10 s: the step spans two executions and passes at 1500 s.
    const d = drive(
      rolloutInput({ steps: [{ percent: 10, minRequests: 20, minSeconds: 1500 }], checkEverySeconds: 10 }),
      baseScript(),
    );
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(150);
    expect(d.executions).toBe(2);
    expect(d.output).toMatchObject({ outcome: 'completed' });
  });
});

describe('rollout orchestrator, revision 2: a step waits for every guard to be judged', () => {
  const psiWaiting = (have: number) => [
    { guard: 'maxPredictionPsi' as const, have, need: 73, of: 'predicted rows' },
  ];
  const fast = [
    { percent: 10, minRequests: 20, minSeconds: 0 },
    { percent: 100, minRequests: 20, minSeconds: 0 },
  ];
  /** Checks 1–4 of each step: PSI short of rows; from the 5th it is judged (nothing breached). */
  const psiJudgedFromFifth = baseScript({
    checkRolloutGuards: (i, n) => {
      const inStep = i.step === 0 ? n : n - 5;
      return {
        figures: figures(inStep * 15),
        breaches: [],
        waiting: inStep < 5 ? psiWaiting(inStep * 15) : [],
      };
    },
  });

  it('a step does not pass while PSI lacks evidence, passes once judged, and says what it waits for', () => {
    const d = drive(rolloutInput({ revision: 2, steps: fast }), psiJudgedFromFifth);
    expect(d.output).toMatchObject({ outcome: 'completed', figures: { requests: 75 } });
    const checks = d.calls.filter((c) => c.name === 'checkRolloutGuards');
    expect(checks).toHaveLength(10);
    // Step 2 is set only after the 5th check of step 1.
    const order = names(d).filter((n) => n === 'checkRolloutGuards' || n === 'setRolloutStep');
    expect(order.slice(0, 8)).toEqual([
      'setRolloutStep',
      'checkRolloutGuards',
      'checkRolloutGuards',
      'setRolloutStep', // the note: requests 30 ≥ 20, PSI still waits
      'checkRolloutGuards',
      'checkRolloutGuards',
      'checkRolloutGuards',
      'setRolloutStep', // step 2
    ]);
    const notes = d.calls.filter((c) => c.name === 'setRolloutStep' && c.input.note);
    // Noted once per step (the waiting set did not change within it), with how much it lacks.
    expect(notes.map((c) => c.input.step)).toEqual([0, 1]);
    expect(notes[0]!.input).toMatchObject({
      step: 0,
      percent: 10,
      state: 'active',
      waiting: psiWaiting(30),
      note: 'step 1 waits for evidence: maxPredictionPsi: 30 of 73 predicted rows',
    });
    expect(
      d.calls.filter((c) => c.name === 'setRolloutStep' && !c.input.note).map((c) => c.input.percent),
    ).toEqual([10, 100]);
  });

  it('a bad candidate cannot pass its step before PSI is judged: the judgment rolls it back', () => {
    const breach = {
      guard: 'maxPredictionPsi' as const,
      value: 1.2,
      limit: 0.4,
      message: 'PSI 1.200 over 75 rows is above 0.4',
    };
    const d = drive(
      rolloutInput({ revision: 2, steps: fast }),
      baseScript({
        checkRolloutGuards: (_i, n) =>
          n < 5
            ? { figures: figures(n * 15), breaches: [], waiting: psiWaiting(n * 15) }
            : { figures: figures(n * 15), breaches: [breach], waiting: [] },
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'rolled_back', step: 0, breaches: [breach] });
    expect(names(d)).not.toContain('deployModel');
    expect(d.calls.filter((c) => c.name === 'setRolloutStep').map((c) => c.input.percent)).toEqual([10, 10]);
  });

  it('an input without a revision (recorded before) keeps the old rule: the step passes unjudged', () => {
    // PSI never has its rows; the old rule passes each step at its first check all the same.
    const d = drive(
      rolloutInput({ steps: fast }),
      baseScript({
        checkRolloutGuards: () => ({ figures: figures(100), breaches: [], waiting: psiWaiting(10) }),
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'completed' });
    // One check per step (minimums met at once); no waiting note.
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(2);
    expect(d.calls.filter((c) => c.name === 'setRolloutStep' && c.input.note)).toEqual([]);
  });

  it('a check without `waiting` (a history recorded before it existed) counts as nothing waiting', () => {
    const d = drive(rolloutInput({ revision: 2, steps: fast }), baseScript());
    expect(d.output).toMatchObject({ outcome: 'completed' });
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(2);
  });

  it('the revision is carried through continue as new, so the next step waits too', () => {
    const d = drive(rolloutInput({ revision: 2, steps: fast }), psiJudgedFromFifth);
    expect(d.executions).toBe(2);
    const secondStepChecks = d.calls.filter((c) => c.name === 'checkRolloutGuards' && c.execution === 2);
    expect(secondStepChecks).toHaveLength(5);
  });

  it('a paused step stays paused even once every guard was judged; an operator can still promote', () => {
    const d = drive(
      rolloutInput({ revision: 2, steps: fast }),
      baseScript({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(30),
          breaches: [],
          waiting: psiWaiting(30),
          ...(n >= 3 ? { control: control('promote', 1) } : {}),
        }),
      }),
    );
    // Little traffic: PSI never gets its rows, the step waits until the operator promotes.
    expect(d.output).toMatchObject({ outcome: 'completed', step: 0 });
    expect(d.output.reason).toMatch(/promoted by ops@example.com at step 1/);
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(3);
  });
});

describe('rollout orchestrator: a step deadline (maxSeconds)', () => {
  const psiWaiting = (have: number) => [
    { guard: 'maxPredictionPsi' as const, have, need: 73, of: 'predicted rows' },
  ];
  /** Little traffic: 5 candidate requests, PSI short of its rows, for ever. */
  const quiet = (over: Partial<Script> = {}) =>
    baseScript({
      checkRolloutGuards: () => ({ figures: figures(5), breaches: [], waiting: psiWaiting(5) }),
      ...over,
    });
  const at = (ms: number) => new Date(T0 + ms).toISOString();
  const ended = (d: Driven) => d.calls.find((c) => c.name === 'endRollout')!;

  it('a step that never gets its traffic times out at its deadline: rolled back, with what it lacked', () => {
    const d = drive(
      rolloutInput({
        revision: 2,
        steps: [{ percent: 10, minRequests: 50, minSeconds: 60, maxSeconds: 600 }],
      }),
      quiet(),
    );
    expect(d.output).toMatchObject({ outcome: 'rolled_back', step: 0, code: 'step_timed_out' });
    expect(d.output.reason).toBe(
      'step 1 did not pass within its deadline of 10 min: it had 5 of 50 candidate requests; maxPredictionPsi: 5 of 73 predicted rows',
    );
    expect(names(d)).not.toContain('deployModel');
    // The deadline counts from when the share was set, and is judged at the deadline itself.
    expect(d.calls.find((c) => c.name === 'setRolloutStep')!.input).toMatchObject({
      at: at(0),
      deadline: at(600_000),
    });
    expect(ended(d).input).toMatchObject({
      outcome: 'rolled_back',
      code: 'step_timed_out',
      step: 0,
      at: at(600_000),
      figures: { requests: 5 },
    });
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(60);
  });

  it('the deadline is judged at its own time even between two checks', () => {
    const d = drive(
      rolloutInput({
        revision: 2,
        checkEverySeconds: 60,
        steps: [{ percent: 10, minRequests: 50, minSeconds: 0, maxSeconds: 90 }],
      }),
      quiet(),
    );
    expect(d.output.code).toBe('step_timed_out');
    expect(ended(d).input.at).toBe(at(90_000));
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(2);
  });

  it('a step that passes in time is not timed out, and the next step gets its own deadline', () => {
    const d = drive(
      rolloutInput({
        revision: 2,
        steps: [
          { percent: 10, minRequests: 50, minSeconds: 60, maxSeconds: 600 },
          { percent: 100, minRequests: 50, minSeconds: 60, maxSeconds: 900 },
        ],
      }),
      baseScript(),
    );
    expect(d.output).toMatchObject({ outcome: 'completed' });
    const sets = d.calls.filter((c) => c.name === 'setRolloutStep').map((c) => c.input);
    expect(sets.map((s) => [s.step, s.at, s.deadline])).toEqual([
      [0, at(0), at(600_000)],
      [1, at(60_000), at(960_000)],
    ]);
    expect(ended(d).input.code).toBeUndefined();
  });

  it('paused time does not count: the deadline moves by the pause, also across continue as new', () => {
    // Checks every second; paused from check 90 to check 150 (60 s, across the 100-check boundary).
    const d = drive(
      rolloutInput({
        revision: 2,
        checkEverySeconds: 1,
        steps: [{ percent: 10, minRequests: 50, minSeconds: 0, maxSeconds: 300 }],
      }),
      quiet({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(5),
          breaches: [],
          waiting: psiWaiting(5),
          ...(n >= 90 ? { control: n < 150 ? control('pause', 1) : control('resume', 2) } : {}),
        }),
      }),
    );
    expect(d.executions).toBeGreaterThanOrEqual(4);
    expect(d.output).toMatchObject({ outcome: 'rolled_back', code: 'step_timed_out' });
    expect(d.output.reason).toMatch(/deadline of 5 min \(1 min paused not counted\)/);
    expect(ended(d).input.at).toBe(at(360_000));
    const sets = d.calls.filter((c) => c.name === 'setRolloutStep').map((c) => c.input);
    expect(sets.map((s) => [s.state, s.deadline])).toEqual([
      ['active', at(300_000)],
      ['paused', undefined], // no deadline while paused
      ['active', at(360_000)],
    ]);
  });

  it('a step paused past its deadline does not time out while paused', () => {
    const d = drive(
      rolloutInput({
        revision: 2,
        checkEverySeconds: 10,
        steps: [{ percent: 10, minRequests: 50, minSeconds: 0, maxSeconds: 60 }],
      }),
      quiet({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(5),
          breaches: [],
          waiting: psiWaiting(5),
          // Paused at 10 s, held well past 60 s, then the operator aborts.
          ...(n >= 1 ? { control: n < 40 ? control('pause', 1) : control('abort', 2) } : {}),
        }),
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'aborted', reason: 'aborted by ops@example.com' });
    expect(d.output.code).toBeUndefined();
  });

  it('a breach at the deadline is a breach; an operator’s promote at the deadline wins over the timeout', () => {
    const breach = { guard: 'maxErrorRate' as const, value: 0.5, limit: 0.02, message: 'error rate 50 %' };
    const steps = [{ percent: 10, minRequests: 50, minSeconds: 0, maxSeconds: 30 }];
    const breached = drive(
      rolloutInput({ revision: 2, steps }),
      quiet({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(5),
          breaches: n >= 3 ? [breach] : [],
          waiting: [],
        }),
      }),
    );
    expect(breached.output).toMatchObject({ outcome: 'rolled_back', breaches: [breach] });
    expect(breached.output.code).toBeUndefined();
    const promoted = drive(
      rolloutInput({ revision: 2, steps }),
      quiet({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(5),
          breaches: [],
          waiting: psiWaiting(5),
          ...(n >= 3 ? { control: control('promote', 1) } : {}),
        }),
      }),
    );
    expect(promoted.output).toMatchObject({
      outcome: 'completed',
      reason: expect.stringMatching(/promoted/),
    });
  });

  it('an input without deadlines (every rollout started before them) sets none and never times out', () => {
    const d = drive(
      rolloutInput({ revision: 2, steps: [{ percent: 10, minRequests: 50, minSeconds: 0 }] }),
      quiet({
        checkRolloutGuards: (_i, n) => ({
          figures: figures(5),
          breaches: [],
          waiting: psiWaiting(5),
          ...(n >= 500 ? { control: control('abort', 1) } : {}),
        }),
      }),
    );
    expect(d.output).toMatchObject({ outcome: 'aborted' });
    expect(d.calls.filter((c) => c.name === 'checkRolloutGuards')).toHaveLength(500);
    expect(d.calls.filter((c) => c.name === 'setRolloutStep').every((c) => !('deadline' in c.input))).toBe(
      true,
    );
  });
});
