/**
 * Function keys, as Azure checks them for HTTP auth levels (durable-host-spec §4.1). Core Tools does not
 * enforce keys locally; devhost enforces them only once keys are configured (`--keys` or the
 * `DEVHOST_KEYS` setting), so local runs stay open by default and auth can still be tested.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The system key the Durable extension's webhooks (`/runtime/webhooks/durabletask/…`) take in Azure. */
export const durableSystemKeyName = 'durabletask_extension';

export interface HostKeys {
  /** The master key: valid for every auth level, the only key for `admin` (and the admin API). */
  master: string;
  /** Named host keys, valid for `function` auth level. */
  functionKeys: Map<string, string>;
  /**
   * System keys by extension name, valid for that extension's webhooks only (and never for a function
   * route). Always holds `durabletask_extension`.
   */
  systemKeys: Map<string, string>;
}

export type AuthLevel = 'anonymous' | 'function' | 'admin' | 'system';

export class KeySpecError extends Error {}

const newKey = (): string => randomBytes(30).toString('base64url');

/**
 * Parses a key spec: comma-separated `name=value` entries (`master=…` is the master key, a name ending in
 * `_extension` such as `durabletask_extension=…` a system key, any other name a function key), a bare
 * value (a function key named `default`), or `generate` (random master and default keys). Without a
 * master entry a random master key is generated, without a `durabletask_extension` entry a random
 * Durable system key. Empty spec ⇒ undefined.
 */
export function parseKeys(spec: string | undefined): HostKeys | undefined {
  if (spec === undefined || spec.trim() === '') return undefined;
  const functionKeys = new Map<string, string>();
  const systemKeys = new Map<string, string>();
  let master: string | undefined;
  for (const rawEntry of spec.split(',')) {
    const entry = rawEntry.trim();
    if (!entry) continue;
    if (entry === 'generate') {
      functionKeys.set('default', newKey());
      continue;
    }
    const eq = entry.indexOf('=');
    const name = eq < 0 ? 'default' : entry.slice(0, eq).trim();
    const value = eq < 0 ? entry : entry.slice(eq + 1).trim();
    if (!name || !value) throw new KeySpecError(`bad key entry '${entry}': expected name=value`);
    if (!/^[\x21-\x7e]+$/.test(value))
      throw new KeySpecError(`key '${name}' must be printable ASCII without spaces`);
    if (name.toLowerCase() === 'master') master = value;
    else if (name.toLowerCase().endsWith('_extension')) systemKeys.set(name.toLowerCase(), value);
    else functionKeys.set(name, value);
  }
  if (!systemKeys.has(durableSystemKeyName)) systemKeys.set(durableSystemKeyName, newKey());
  return { master: master ?? newKey(), functionKeys, systemKeys };
}

function sameKey(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** The key a request presents: header `x-functions-key` wins over query `code`. */
export function presentedKey(
  headers: Record<string, string | string[] | undefined>,
  url: URL,
): string | undefined {
  const header = headers['x-functions-key'];
  const fromHeader = Array.isArray(header) ? header[0] : header;
  if (fromHeader) return fromHeader;
  return url.searchParams.get('code') ?? undefined;
}

/**
 * True when the request may run at `level`. With no keys configured everything is allowed. `system`
 * takes the master key or the Durable extension's system key (Azure's `AuthorizationLevel.System`); function
 * keys never open it.
 */
export function authorize(
  keys: HostKeys | undefined,
  level: string | undefined,
  presented: string | undefined,
): boolean {
  if (!keys) return true;
  const normalized = (level ?? 'anonymous').toLowerCase();
  if (normalized === 'anonymous') return true;
  if (presented === undefined) return false;
  if (sameKey(presented, keys.master)) return true;
  if (normalized === 'system') {
    const systemKey = keys.systemKeys.get(durableSystemKeyName);
    return systemKey !== undefined && sameKey(presented, systemKey);
  }
  if (normalized !== 'function') return false;
  for (const value of keys.functionKeys.values()) if (sameKey(presented, value)) return true;
  return false;
}
