/**
 * Replacing a running instance (host.json `overridableExistingInstanceStates: AnyState`) ends its
 * execution like any other ending: the entities it held locked are released, so operations queued
 * behind its lock run at once instead of stalling until some other message or a restart.
 */
import type { DurableEngineOptions, RegisteredFunction } from '../../../devhost/contracts';
import { readDurableConfig } from '../../../devhost/durable/config';
import { type EntitySink, TaskHub } from '../../../devhost/durable/hub';
import { InstanceManager } from '../../../devhost/durable/instances';
import type { TaskHubStorage } from '../../../devhost/durable/store';

const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

function hub(states: 'AnyState' | 'NonRunningStates') {
  const orchestrator = { name: 'holdLock', kind: 'orchestration' } as unknown as RegisteredFunction;
  const opts = {
    log: quiet,
    registry: { get: (n: string) => (n === 'holdLock' ? orchestrator : undefined), byKind: () => [] },
  } as unknown as DurableEngineOptions;
  const store = {
    writeInstance: async () => undefined,
    deleteRows: async () => undefined,
  } as unknown as TaskHubStorage;
  const h = new TaskHub(
    opts,
    readDurableConfig({ extensions: { durableTask: { overridableExistingInstanceStates: states } } }, {}),
    store,
  );
  /** Each release, with whether the execution that held the lock had stopped being the instance's one. */
  const released: { id: string; holderGone: boolean }[] = [];
  let holder: string | undefined;
  h.entities = {
    released: (id: string) => released.push({ id, holderGone: h.get(id)?.executionId !== holder }),
  } as unknown as EntitySink;
  const manager = new InstanceManager(h, () => undefined);
  return { h, manager, released, hold: (executionId: string) => (holder = executionId) };
}

describe('replacing an instance', () => {
  it('releases the entities a running execution it replaces held, once that execution is gone', async () => {
    const { h, manager, released, hold } = hub('AnyState');
    const first = await manager.startNew({ name: 'holdLock', instanceId: 'held', input: null });
    first.status = 'Running'; // inside its critical section
    hold(first.executionId);
    const second = await manager.startNew({ name: 'holdLock', instanceId: 'held', input: null });
    expect(second.executionId).not.toBe(first.executionId);
    expect(h.get('held')).toBe(second);
    expect(released).toEqual([{ id: 'held', holderGone: true }]);
  });

  it('releases nothing when the instance it replaces had already ended (its ending released them)', async () => {
    const { manager, released } = hub('AnyState');
    const first = await manager.startNew({ name: 'holdLock', instanceId: 'done', input: null });
    first.status = 'Completed';
    await manager.startNew({ name: 'holdLock', instanceId: 'done', input: null });
    expect(released).toEqual([]);
  });

  it('refuses to replace a running instance by default, and releases nothing', async () => {
    const { manager, released } = hub('NonRunningStates');
    const first = await manager.startNew({ name: 'holdLock', instanceId: 'kept', input: null });
    first.status = 'Running';
    await expect(manager.startNew({ name: 'holdLock', instanceId: 'kept', input: null })).rejects.toThrow(
      /already exists/,
    );
    expect(released).toEqual([]);
  });
});
