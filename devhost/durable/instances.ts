/**
 * Instance management, the client operations behind the Durable HTTP API (durable-host-spec §9): start
 * (or replace a finished) instance, raise an event, terminate / suspend / resume, purge. Every request
 * is persisted before it is acknowledged, so a crash right after the answer loses nothing.
 */
import { ApiError } from './apiError';
import { isTerminal } from './history';
import type { TaskHub } from './hub';
import {
  type Instance,
  inboxItemFrom,
  instanceRecord,
  newExecutionId,
  newInstance,
  persistedSeqs,
  retire,
  validateInstanceId,
} from './instance';
import { checkPayload } from './payload';
import { EntityTooLargeError, type InboxMessage, inboxRowKey, type ParentRef } from './store';

export interface StartOptions {
  name: string;
  instanceId?: string;
  /** JSON text of the input, or null. */
  input: string | null;
  version?: string;
  parent?: ParentRef;
}

const badArguments = 'One or more of the arguments submitted is incorrect';

export class InstanceManager {
  constructor(
    private readonly hub: TaskHub,
    /** Queues an episode for an instance (scheduler.ts). */
    private readonly kick: (inst: Instance) => void,
  ) {}

  /** Creates (or replaces a finished) instance; resolves once it is persisted as Pending. */
  async startNew(o: StartOptions): Promise<Instance> {
    const { hub } = this;
    const fn = hub.orchestratorFunction(o.name);
    if (!fn) throw new ApiError(400, hub.unknownFunction(o.name, 'orchestration'), badArguments);
    const id = o.instanceId ?? newExecutionId();
    validateInstanceId(id);
    try {
      checkPayload('The orchestration input', o.input, hub.config.maxPayloadBytes);
    } catch (e) {
      throw new ApiError(400, (e as Error).message, badArguments);
    }
    const existing = hub.instances.get(id);
    if (existing && !existing.purged) {
      const replaceable =
        hub.config.overridableExistingInstanceStates === 'AnyState' || isTerminal(existing.status);
      if (!replaceable) {
        throw new ApiError(
          500,
          `An Orchestration instance with the status ${existing.status} already exists.`,
        );
      }
    }
    return this.create(fn.name, id, o.input, o.version ?? '', o.parent, existing);
  }

  /**
   * Creates instance `id` (a new generation of `existing`, which stops receiving anything) and queues
   * its first episode. Sub-orchestrations are created here too, without the checks of `startNew`.
   */
  async create(
    name: string,
    id: string,
    input: string | null,
    version: string,
    parent: ParentRef | undefined,
    existing: Instance | undefined,
  ): Promise<Instance> {
    const { instances, store } = this.hub;
    // Replacing a running execution (overridableExistingInstanceStates AnyState) ends it, as much as
    // a termination would.
    const endsRunning = existing !== undefined && !isTerminal(existing.status);
    const inst = newInstance({
      id,
      name,
      version,
      gen: existing ? existing.gen + 1 : 0,
      input,
      parent,
      nextSeq: existing?.nextSeq ?? 1,
      now: this.hub.now(),
    });
    if (existing) {
      // The old incarnation stops receiving anything; its leftovers are garbage.
      retire(existing);
      const leftovers = persistedSeqs(existing.inbox).map(inboxRowKey);
      if (leftovers.length > 0) await store.deleteRows(id, leftovers);
    }
    instances.set(id, inst);
    try {
      await store.writeInstance(instanceRecord(inst));
    } catch (e) {
      if (instances.get(id) === inst) {
        if (existing) instances.set(id, existing);
        else instances.delete(id);
      }
      if (e instanceof EntityTooLargeError) throw new ApiError(400, e.message, badArguments);
      throw e;
    }
    // The entities the replaced execution still held locked are free now that it is no longer the
    // instance's execution: what waited for them runs (as after every other ending).
    if (endsRunning) this.hub.entities?.released(id);
    this.kick(inst);
    return inst;
  }

  async raiseEvent(id: string, name: string, inputJson: string | null): Promise<void> {
    const inst = this.live(id);
    try {
      checkPayload(`The data of event '${name}'`, inputJson, this.hub.config.maxPayloadBytes);
    } catch (e) {
      throw new ApiError(400, (e as Error).message, 'Invalid event data');
    }
    const seq = inst.nextSeq++;
    await this.enqueuePersisted(inst, {
      seq,
      kind: 'event',
      name,
      input: inputJson ?? 'null',
      ts: this.hub.now(),
    });
  }

  async control(id: string, kind: 'terminate' | 'suspend' | 'resume', reason: string): Promise<void> {
    const inst = this.live(id);
    const seq = inst.nextSeq++;
    await this.enqueuePersisted(inst, { seq, kind, reason, ts: this.hub.now() });
  }

  async purge(id: string): Promise<boolean> {
    const inst = this.hub.get(id);
    if (!inst) return false;
    inst.purged = true;
    retire(inst);
    inst.inbox = [];
    this.hub.instances.delete(id);
    await this.hub.store.deleteInstance(id);
    this.hub.entities?.released(id);
    return true;
  }

  /** The instance a message is for: it must exist and not have finished. */
  private live(id: string): Instance {
    const inst = this.hub.get(id);
    if (!inst) throw new ApiError(404, `No instance with ID '${id}' found.`);
    if (isTerminal(inst.status)) throw new ApiError(410, `Instance '${id}' is ${inst.status}.`);
    return inst;
  }

  /** Persists an inbox message before acknowledging it, so a crash cannot lose it. */
  /** Saves the message as an inbox row, then queues the item the episode reads from it. */
  private async enqueuePersisted(inst: Instance, message: InboxMessage): Promise<void> {
    try {
      await this.hub.store.putInbox(inst.id, message);
    } catch (e) {
      if (e instanceof EntityTooLargeError) throw new ApiError(400, e.message, 'Invalid event data');
      throw e;
    }
    if (this.hub.instances.get(inst.id) !== inst) return; // replaced or purged meanwhile
    inst.inbox.push(inboxItemFrom(message));
    this.kick(inst);
  }
}
