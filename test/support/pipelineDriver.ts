/**
 * Runs the trainingPipeline orchestrator function in-process with scripted activity and
 * sub-orchestration results: a minimal stand-in for the Durable context that answers each
 * scheduled call at once and records it. It does not replay (each call is answered the first
 * time), so it measures and compares what a body asks for, not replay safety (the golden history
 * tests do that). The run document is kept by the real recordRunStep and finishRun activity code
 * over an in-memory run document, so the timeline an orchestration writes can be compared.
 *
 * The clock advances one second per answered call that is not bookkeeping: two bodies that do the
 * same work write the same times whatever number of bookkeeping calls they make.
 */
import type { OrchestrationContext } from 'durable-functions';
import { finishRun } from '../../activities/finishRun';
import { recordRunStep } from '../../activities/recordRunStep';
import {
  BOOKKEEPING_ACTIVITIES,
  finishRunActivity,
  recordRunStepActivity,
  type PipelineRunInput,
} from '../../lib/contracts/pipeline';
import type { RunDocument } from '../../lib/contracts/runDocument';
import { newRunDocument } from '../../lib/runs/document';
import { trainingPipeline } from '../../orchestrators/trainingPipeline';

export interface Call {
  /** A durable timer's input is the ISO time it fires at; the driver's clock jumps there. */
  kind: 'activity' | 'sub' | 'timer';
  name: string;
  input: unknown;
  instanceId?: string;
}

/** An answer: a value, or `{ throw: error }` for a call whose retries ran out. */
export type Answer = unknown;
export type Script = Record<string, (input: never, call: Call, count: number) => Answer>;

export interface DriveResult {
  output: unknown;
  calls: Call[];
  customStatus: unknown;
  run: RunDocument;
  /** Activity calls that only touch the run document, and every activity call. */
  bookkeeping: number;
  activities: number;
}

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

export function newDriverRun(input: PipelineRunInput): RunDocument {
  return newRunDocument({
    id: input.runId,
    pipeline: input.pipeline,
    pipelineVersion: input.pipelineVersion,
    instanceId: input.runId,
    trigger: { kind: 'http', by: input.requestedBy },
    source: input.source,
    at: new Date(T0).toISOString(),
  });
}

export async function drivePipeline(input: PipelineRunInput, script: Script): Promise<DriveResult> {
  let clock = T0;
  let run = newDriverRun(input);
  let customStatus: unknown;
  const calls: Call[] = [];
  const counts = new Map<string, number>();
  const runs = {
    update: async (_p: string, _id: string, fn: (r: RunDocument) => RunDocument) => (run = fn(run)),
  };
  const ending = {
    approvals: {
      updateRecord: async () => {
        throw Object.assign(new Error('no approval'), { code: 'approval_not_found' });
      },
    },
    slots: { release: async () => true },
  };
  const context = {
    log: () => undefined,
    df: {
      instanceId: input.runId,
      isReplaying: false,
      get currentUtcDateTime() {
        return new Date(clock);
      },
      getInput: () => input,
      newGuid: (name: string) => `guid-${name}`,
      setCustomStatus: (s: unknown) => (customStatus = s),
      callActivityWithRetry: (name: string, _retry: unknown, activityInput: unknown): Call => ({
        kind: 'activity',
        name,
        input: activityInput,
      }),
      createTimer: (at: Date): Call => ({ kind: 'timer', name: 'timer', input: at.toISOString() }),
      callSubOrchestrator: (name: string, subInput: unknown, instanceId: string): Call => ({
        kind: 'sub',
        name,
        input: subInput,
        instanceId,
      }),
    },
  } as unknown as OrchestrationContext;

  const gen = trainingPipeline(context) as Generator<Call, unknown, unknown>;
  let next = gen.next();
  while (!next.done) {
    const call = next.value;
    calls.push(call);
    const count = (counts.get(call.name) ?? 0) + 1;
    counts.set(call.name, count);
    let answer: Answer;
    if (call.kind === 'timer') {
      clock = Math.max(clock, Date.parse(call.input as string));
      answer = undefined;
    } else if (call.name === recordRunStepActivity.name) {
      answer = await recordRunStep({ runs })(recordRunStepActivity.input.parse(call.input));
    } else if (call.name === finishRunActivity.name) {
      answer = await finishRun({ runs, ...ending })(finishRunActivity.input.parse(call.input));
    } else {
      const handler = script[call.name];
      if (!handler) throw new Error(`the script does not answer ${call.kind} ${call.name}`);
      answer = handler(call.input as never, call, count);
      if (!BOOKKEEPING_ACTIVITIES.has(call.name)) clock += 1000;
    }
    if (answer && typeof answer === 'object' && 'throw' in answer)
      next = gen.throw((answer as { throw: Error }).throw);
    else next = gen.next(answer);
  }
  const activities = calls.filter((c) => c.kind === 'activity');
  return {
    output: next.value,
    calls,
    customStatus,
    run,
    bookkeeping: activities.filter((c) => BOOKKEEPING_ACTIVITIES.has(c.name)).length,
    activities: activities.length,
  };
}
