/**
 * The inbox plan of one episode (devhost/durable/batch.ts), on its own: which rows an episode consumes,
 * which events reach the orchestrator, which wait for a resume, and where a terminate stops.
 */
import { planBatch } from '../../../devhost/durable/batch';
import { events, EventType } from '../../../devhost/durable/history';
import { type InboxItem, newInstance } from '../../../devhost/durable/instance';

const running = () => {
  const inst = newInstance({
    id: 'i',
    name: 'orch',
    version: '',
    gen: 0,
    input: null,
    parent: undefined,
    nextSeq: 1,
    now: 1_000,
  });
  inst.status = 'Running';
  inst.history = [events.orchestratorStarted(1_000)];
  return inst;
};

const raised = (seq: number, name: string): InboxItem => ({
  kind: 'event',
  event: events.eventRaised(2_000, name, 'null'),
  seq,
});

describe('planBatch', () => {
  it('delivers events in arrival order and consumes their rows', () => {
    const plan = planBatch(running(), [raised(1, 'a'), raised(2, 'b')]);
    expect(plan.deliver.map((e) => e.Name)).toEqual(['a', 'b']);
    expect(plan.consumed).toEqual([1, 2]);
    expect(plan.held).toEqual([]);
    expect(plan.status).toBe('Running');
  });

  it('holds events that arrive while suspended, without consuming their rows', () => {
    const plan = planBatch(running(), [{ kind: 'suspend', reason: 'r', seq: 1 }, raised(2, 'a')]);
    expect(plan.status).toBe('Suspended');
    expect(plan.pre.map((e) => e.EventType)).toEqual([EventType.ExecutionSuspended]);
    expect(plan.deliver).toEqual([]);
    expect(plan.held.map((i) => i.kind === 'event' && i.event.Name)).toEqual(['a']);
    expect(plan.consumed).toEqual([1]);
  });

  it('delivers the held events on resume, in order', () => {
    const plan = planBatch(running(), [
      { kind: 'suspend', reason: 's', seq: 1 },
      raised(2, 'a'),
      raised(3, 'b'),
      { kind: 'resume', reason: 'r', seq: 4 },
    ]);
    expect(plan.status).toBe('Running');
    expect(plan.pre.map((e) => e.EventType)).toEqual([
      EventType.ExecutionSuspended,
      EventType.ExecutionResumed,
    ]);
    expect(plan.deliver.map((e) => e.Name)).toEqual(['a', 'b']);
    expect(plan.held).toEqual([]);
    // Regression: events held and then delivered by the resume kept their inbox rows, so a restart
    // delivered them again. Every row of the batch is consumed.
    expect(plan.consumed).toEqual([1, 4, 2, 3]);
  });

  it('stops at the first terminate: later messages are not part of the episode', () => {
    const plan = planBatch(running(), [
      raised(1, 'a'),
      { kind: 'terminate', reason: 'first', seq: 2 },
      { kind: 'terminate', reason: 'second', seq: 3 },
    ]);
    expect(plan.terminateReason).toBe('first');
    expect(plan.consumed).toEqual([1, 2]);
  });

  it('records an abort (an oversized activity result) without consuming a row', () => {
    const plan = planBatch(running(), [{ kind: 'abort', message: 'too large' }]);
    expect(plan.abort).toBe('too large');
    expect(plan.consumed).toEqual([]);
    expect(plan.terminateReason).toBeUndefined();
  });

  it('stamps control events after the previous episode, even one stamped ahead of the clock', () => {
    const inst = running();
    inst.lastTs = Date.now() + 60_000;
    const plan = planBatch(inst, [{ kind: 'suspend', reason: 'r', seq: 1 }]);
    expect(plan.stamp).toBe(inst.lastTs + 1);
  });
});
