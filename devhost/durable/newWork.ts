/**
 * The scheduling event of each new work item an episode produced (TaskScheduled, TimerCreated,
 * SubOrchestrationInstanceCreated, EventSent), checked before anything is persisted: unknown function
 * names, payload limits, sub-orchestration ids, durable HTTP requests. A thrown error fails the
 * orchestration with its message.
 */
import { randomUUID } from 'node:crypto';
import { httpActivityName, pollTag, validateHttpRequest } from './durableHttp';
import { EntityRunner } from './entities';
import { parseEntityId } from './entityTypes';
import { events, type HistoryEvent } from './history';
import type { TaskHub } from './hub';
import { type Instance, validateInstanceId } from './instance';
import { checkPayload, encodeActivityInput, encodeOrchestrationInput } from './payload';
import type { WorkItem } from './replay';

/**
 * On the final episode (`finalEpisode`: the orchestrator already returned) an unknown name is not an
 * error: the event is recorded as it is and the work never starts.
 */
export function schedulingEvent(
  hub: TaskHub,
  inst: Instance,
  item: WorkItem,
  ts: number,
  finalEpisode: boolean,
): HistoryEvent {
  const a = item.action;
  const maxBytes = hub.config.maxPayloadBytes;
  switch (item.kind) {
    case 'activity': {
      const name = a.functionName ?? '';
      const fn = hub.opts.registry.get(name);
      if (!finalEpisode && fn?.kind !== 'activity') throw new Error(hub.unknownFunction(name, 'activity'));
      const input = encodeActivityInput(a.input);
      checkPayload(`The input of activity '${name}'`, input, maxBytes);
      return events.taskScheduled(ts, item.id, fn?.name ?? name, input);
    }
    case 'timer':
      return events.timerCreated(ts, item.id, item.fireAt ?? ts);
    case 'subOrchestration': {
      const name = a.functionName ?? '';
      const fn = hub.orchestratorFunction(name);
      if (!finalEpisode && !fn) throw new Error(hub.unknownFunction(name, 'orchestration'));
      const childId = a.instanceId || `${inst.executionId}:${item.id}`;
      if (childId === inst.id || childId === inst.parent?.instanceId) {
        throw new Error(
          'The instance ID of a sub-orchestration must be different than the instance ID of a parent orchestration.',
        );
      }
      validateInstanceId(childId);
      const input = encodeOrchestrationInput(a.input);
      checkPayload(`The input of sub-orchestration '${name}'`, input, maxBytes);
      return events.subOrchestrationCreated(ts, item.id, fn?.name ?? name, childId, input);
    }
    case 'callEntity':
    case 'signalEntity': {
      const target = a.instanceId ?? '';
      const op = a.operation ?? '';
      const entities = hub.entities;
      if (!entities)
        throw new Error(
          `Durable entities need devhost's SQLite task hub (the orchestrator used ${describeEntityAction(item)}).`,
        );
      const { name } = parseEntityId(target);
      if (!finalEpisode && !entities.entityFunction(name)) throw new Error(entities.unknownEntity(name));
      const input = a.input === undefined ? undefined : JSON.stringify(a.input);
      if (input !== undefined) checkPayload(`The input of entity operation '${op}'`, input, maxBytes);
      const request = EntityRunner.requestMessage(inst, op, a.input, item.kind === 'signalEntity', ts);
      return events.eventSent(ts, item.id, target, op, request);
    }
    case 'callHttp': {
      const request = validateHttpRequest(item.httpRequest ?? a.httpRequest);
      const input = JSON.stringify([request]);
      checkPayload(`The request of callHttp ${request.method} ${request.uri}`, input, maxBytes);
      const scheduled = events.taskScheduled(ts, item.id, httpActivityName, input);
      if (item.notBefore !== undefined)
        scheduled.Tags = { [pollTag]: new Date(item.notBefore).toISOString() };
      return scheduled;
    }
    case 'lockEntities': {
      // The request goes to the first entity of the section, which forwards it (entities.ts).
      const entities = hub.entities;
      if (!entities)
        throw new Error(
          `Durable entities need devhost's SQLite task hub (the orchestrator used ${describeEntityAction(item)}).`,
        );
      const set = item.lockSet ?? [];
      if (set.length === 0) throw new Error('lock() needs at least one entity id');
      if (!finalEpisode) {
        for (const id of set) {
          const { name } = parseEntityId(id);
          if (!entities.entityFunction(name)) throw new Error(entities.unknownEntity(name));
        }
      }
      const requestId = a.lockRequestId || randomUUID();
      return events.eventSent(
        ts,
        item.id,
        set[0]!,
        'lock',
        EntityRunner.lockMessage(inst, requestId, set, ts),
      );
    }
    case 'releaseEntities':
      return events.eventSent(
        ts,
        item.id,
        item.target ?? '',
        'release',
        EntityRunner.releaseMessage(inst, randomUUID(), ts),
      );
    default:
      throw new Error(`devhost cannot schedule ${describeEntityAction(item)}`);
  }
}

function describeEntityAction(item: WorkItem): string {
  const a = item.action;
  const target = a.instanceId ? ` on '${a.instanceId}'` : '';
  switch (item.kind) {
    case 'callEntity':
      return `callEntity '${a.operation ?? ''}'${target}`;
    case 'signalEntity':
      return `signalEntity '${a.operation ?? ''}'${target}`;
    case 'lockEntities':
      return `lock() on ${(item.lockSet ?? []).map((id) => `'${id}'`).join(', ')}`;
    default:
      return 'an entity operation';
  }
}
