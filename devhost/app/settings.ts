/**
 * App configuration as the Functions host reads it: `local.settings.json` (spec §2.2) and `host.json`
 * (spec §10), with `%SETTING%` references resolved from the environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export class AppConfigError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
    this.name = 'AppConfigError';
  }
}

export interface LocalSettings {
  values: Record<string, string>;
  /** `Host.LocalHttpPort`, when set. */
  localHttpPort?: number;
  /** `Host.CORS`: allowed origins (`*` allowed); empty when not configured. */
  cors: string[];
  corsCredentials: boolean;
}

function readJsonFile(file: string): unknown {
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new AppConfigError(file, `is not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `<appDir>/local.settings.json`; a missing file means no settings. */
export function readLocalSettings(appDir: string): LocalSettings {
  const file = path.join(appDir, 'local.settings.json');
  const empty: LocalSettings = { values: {}, cors: [], corsCredentials: false };
  if (!existsSync(file)) return empty;
  const json = readJsonFile(file);
  if (!isRecord(json)) throw new AppConfigError(file, 'must contain a JSON object');
  if (json.IsEncrypted === true) {
    throw new AppConfigError(
      file,
      'is encrypted (IsEncrypted: true); decrypt it with `func settings decrypt`',
    );
  }
  const values: Record<string, string> = {};
  if (isRecord(json.Values)) {
    for (const [key, value] of Object.entries(json.Values)) {
      if (value === null || value === undefined) continue;
      values[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
  const host = isRecord(json.Host) ? json.Host : {};
  let localHttpPort: number | undefined;
  if (host.LocalHttpPort !== undefined) {
    const port = Number(host.LocalHttpPort);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new AppConfigError(
        file,
        `Host.LocalHttpPort must be a port number, got ${String(host.LocalHttpPort)}`,
      );
    }
    localHttpPort = port;
  }
  const cors =
    typeof host.CORS === 'string'
      ? host.CORS.split(',')
          .map((origin) => origin.trim())
          .filter(Boolean)
      : [];
  return { values, localHttpPort, cors, corsCredentials: host.CORSCredentials === true };
}

/**
 * Copies settings into `env`; a variable that is already set wins (as in Core Tools).
 * Returns the names that were skipped because the environment already had them.
 */
export function applySettings(
  values: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const shadowed: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (env[key] === undefined) env[key] = value;
    else if (env[key] !== value) shadowed.push(key);
  }
  return shadowed;
}

/** Reads `<appDir>/host.json` (required by the Functions host; devhost accepts its absence). */
export function readHostJson(appDir: string): Record<string, unknown> {
  const file = path.join(appDir, 'host.json');
  if (!existsSync(file)) return { version: '2.0' };
  const json = readJsonFile(file);
  if (!isRecord(json)) throw new AppConfigError(file, 'must contain a JSON object');
  return json;
}

/**
 * Resolves a binding/host.json value of the form `%SETTING%` from the environment (the whole value;
 * the host also substitutes `%X%` inside longer strings, which this does too). Unknown settings throw.
 */
export function resolveSettingRefs(
  value: string,
  env: NodeJS.ProcessEnv = process.env,
  what = 'value',
): string {
  return value.replace(/%([^%\s]+)%/g, (_match, name: string) => {
    const resolved = env[name];
    if (resolved === undefined) {
      throw new Error(`${what} refers to app setting '${name}' (%${name}%), which is not set`);
    }
    return resolved;
  });
}

function getPath(json: Record<string, unknown>, keys: string[]): unknown {
  let current: unknown = json;
  for (const key of keys) {
    if (!isRecord(current)) return undefined;
    // host.json keys are case-insensitive in the Functions host.
    const match = Object.keys(current).find((k) => k.toLowerCase() === key.toLowerCase());
    if (match === undefined) return undefined;
    current = current[match];
  }
  return current;
}

/** `extensions.http.routePrefix`, default `api`; returned without leading/trailing slashes. */
export function routePrefixOf(hostJson: Record<string, unknown>): string {
  const value = getPath(hostJson, ['extensions', 'http', 'routePrefix']);
  const prefix = typeof value === 'string' ? value : 'api';
  return prefix.replace(/^\/+|\/+$/g, '');
}

/** `extensions.durableTask.hubName` with `%SETTING%` resolved; default `WEBSITE_SITE_NAME`, else `TestHubName`. */
export function hubNameOf(hostJson: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): string {
  const value = getPath(hostJson, ['extensions', 'durableTask', 'hubName']);
  if (typeof value === 'string' && value.trim() !== '') {
    return resolveSettingRefs(value.trim(), env, 'host.json extensions.durableTask.hubName');
  }
  const site = env.WEBSITE_SITE_NAME?.replace(/[^A-Za-z0-9]/g, '');
  return site ? site : 'TestHubName';
}

/** `functionTimeout` (`hh:mm:ss` or `d.hh:mm:ss`) in milliseconds, or undefined (no limit; `-1` too). */
export function functionTimeoutOf(hostJson: Record<string, unknown>): number | undefined {
  const value = getPath(hostJson, ['functionTimeout']);
  if (typeof value !== 'string' || value.trim() === '-1') return undefined;
  return parseTimeSpan(value);
}

/** Parses a .NET TimeSpan `[d.]hh:mm:ss[.fff]`; undefined when it is not one. */
export function parseTimeSpan(text: string): number | undefined {
  const match = /^\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?\s*$/.exec(text);
  if (!match) return undefined;
  const [, days, hours, minutes, seconds, fraction] = match;
  const ms =
    ((Number(days ?? 0) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 +
    Number(seconds) * 1000 +
    (fraction ? Math.round(Number(`0.${fraction}`) * 1000) : 0);
  return ms;
}
