/**
 * The captured registrations, classified by trigger (durable-host-spec §2.4).
 */
import type { BindingMetadata, FunctionRegistry, RegisteredFunction, TriggerKind } from '../contracts';
import type { CapturedRegistration, ProgrammingModelLike } from './coreShim';

const kindByTriggerType: Record<string, TriggerKind> = {
  httptrigger: 'http',
  timertrigger: 'timer',
  orchestrationtrigger: 'orchestration',
  activitytrigger: 'activity',
  entitytrigger: 'entity',
};

const durableClientTypes = new Set(['durableclient', 'orchestrationclient']);

/** A registered function plus the programming model (copy of `@azure/functions`) that registered it. */
export interface HostedFunction extends RegisteredFunction {
  programmingModel: ProgrammingModelLike | undefined;
}

export interface HostRegistry extends FunctionRegistry {
  all(): HostedFunction[];
  get(name: string): HostedFunction | undefined;
  byKind(kind: TriggerKind): HostedFunction[];
}

export function classify(registration: CapturedRegistration): HostedFunction {
  const { metadata } = registration;
  const bindings = Object.entries(metadata.bindings ?? {});
  const trigger = bindings.find(([, binding]) => /trigger$/i.test(binding.type));
  if (!trigger) {
    throw new Error(
      `Function '${metadata.name}' has no trigger binding (a binding whose type ends in "Trigger")`,
    );
  }
  const [triggerBindingName, triggerBinding] = trigger;
  const client = bindings.find(
    ([, binding]) => durableClientTypes.has(binding.type.toLowerCase()) && binding.direction !== 'out',
  );
  return {
    name: metadata.name,
    kind: kindByTriggerType[triggerBinding.type.toLowerCase()] ?? 'other',
    metadata,
    triggerBindingName,
    triggerBinding: triggerBinding as BindingMetadata,
    durableClientBindingName: client?.[0],
    callback: registration.callback,
    programmingModel: registration.programmingModel,
  };
}

export function createRegistry(registrations: CapturedRegistration[]): HostRegistry {
  const functions = registrations.map(classify);
  const byName = new Map(functions.map((fn) => [fn.name.toLowerCase(), fn]));
  return {
    all: () => [...functions],
    get: (name) => byName.get(name.toLowerCase()),
    byKind: (kind) => functions.filter((fn) => fn.kind === kind),
  };
}
