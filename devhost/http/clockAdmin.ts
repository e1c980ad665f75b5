/**
 * `GET|POST /admin/host/clock`, devhost only (no Azure counterpart; a test facility): reads devhost's
 * movable clock, or moves it forward. Behind the master key like the rest of the admin API.
 *
 *   GET  → 200 {"now": ISO, "wallClock": ISO, "offsetMs": n, "offset": "+3h"}
 *   POST {"advanceBy": "3h"}                 → 200, same shape (durations: 3h, 90m, 1h30m, 03:00:00, ms)
 *   POST {"to": "2027-01-04T09:00:00Z"}      → 200, same shape
 *   a move back in time                      → 409 {"error": …, "code": "clock_backwards"}
 *   a move past 9999-12-31T23:59:59.999Z     → 400 {"error": …, "code": "clock_setting_invalid"}
 *   anything else in the body                → 400 {"error": …, "code": "clock_setting_invalid"}
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ClockBackwardsError,
  ClockSettingError,
  type DevhostClock,
  describeOffset,
  parseClockDuration,
  parseClockSetting,
} from '../clock/clock';

export const clockAdminPath = '/admin/host/clock';

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

const view = (clock: DevhostClock) => ({
  now: new Date(clock.now()).toISOString(),
  wallClock: new Date().toISOString(),
  offsetMs: clock.offsetMs,
  offset: describeOffset(clock.offsetMs),
});

const invalid = (message: string) => new ClockSettingError(message);

/** Answers a request to the clock admin path (the caller already checked the master key). */
export function handleClockAdmin(
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  clock: DevhostClock | undefined,
): void {
  if (!clock) return send(res, 404, { error: 'this devhost has no movable clock' });
  if (req.method === 'GET') return send(res, 200, view(clock));
  if (req.method !== 'POST')
    return send(res, 405, { error: `Use GET or POST ${clockAdminPath}` }, { allow: 'GET, POST' });
  try {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8') || 'null');
    } catch {
      throw invalid('The body must be JSON like {"advanceBy": "3h"} or {"to": "2027-01-04T09:00:00Z"}');
    }
    const request = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    const keys = Object.keys(request);
    if (keys.length !== 1 || !['advanceBy', 'to'].includes(keys[0]!))
      throw invalid(
        `The body needs exactly one of "advanceBy" (a duration) or "to" (an ISO instant), got ${JSON.stringify(keys)}`,
      );
    const value = request[keys[0]!];
    if (keys[0] === 'advanceBy') {
      if (typeof value === 'number') clock.advanceBy(value);
      else if (typeof value === 'string') {
        if (value.trim().startsWith('-'))
          throw new ClockBackwardsError(
            `"advanceBy" is negative ('${value}'): devhost's clock only moves forward (a history must never go back in time)`,
          );
        clock.advanceBy(parseClockDuration(value, '"advanceBy"'));
      } else throw invalid('"advanceBy" must be a duration string (3h, 90m) or milliseconds');
    } else {
      if (typeof value !== 'string')
        throw invalid('"to" must be an ISO 8601 instant like 2027-01-04T09:00:00Z');
      const target = parseClockSetting(value, '"to"');
      if (!('at' in target))
        throw invalid(`"to" must be an ISO 8601 instant, got '${value}' (use "advanceBy" for a duration)`);
      clock.moveTo(target);
    }
    return send(res, 200, view(clock));
  } catch (err) {
    if (err instanceof ClockBackwardsError) return send(res, 409, { error: err.message, code: err.code });
    if (err instanceof ClockSettingError) return send(res, 400, { error: err.message, code: err.code });
    throw err;
  }
}
