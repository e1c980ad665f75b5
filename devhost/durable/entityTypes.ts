/**
 * Durable entity ids (durable-host-spec appendix B). What devhost stores for entities is defined with
 * the other stored types in store.ts.
 */
/** `@name@key` ⇒ { name, key } (the library's `EntityId.getEntityIdFromSchedulerId`). */
export function parseEntityId(schedulerId: string): { name: string; key: string } {
  const at = schedulerId.indexOf('@', 1);
  if (!schedulerId.startsWith('@') || at < 0)
    throw new Error(`'${schedulerId}' is not an entity id (@name@key)`);
  return { name: schedulerId.slice(1, at), key: schedulerId.slice(at + 1) };
}

export const entitySchedulerId = (name: string, key: string): string => `@${name.toLowerCase()}@${key}`;
