/**
 * devhost's console logger: one line per message, `time level message key=value…`.
 * Warnings and errors go to stderr, the rest to stdout.
 */
import { writeSync } from 'node:fs';
import type { Logger } from '../contracts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.stack ?? value.message);
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

export function formatLine(level: LogLevel, message: string, fields?: Record<string, unknown>): string {
  let line = `${new Date().toISOString()} ${level.padEnd(5)} ${message}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined) line += ` ${key}=${formatValue(value)}`;
    }
  }
  return line;
}

/**
 * Lines are batched and written once per event-loop turn: under load one write per invocation line
 * costs more than the invocation. Whatever is pending is written synchronously when the process exits.
 */
export function createConsoleLogger(minLevel: LogLevel = 'info'): Logger {
  const pending: { fd: 1 | 2; text: string }[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    let out = '';
    let err = '';
    for (const entry of pending.splice(0)) {
      if (entry.fd === 1) out += entry.text;
      else err += entry.text;
    }
    if (out) process.stdout.write(out);
    if (err) process.stderr.write(err);
  };
  process.once('exit', () => {
    for (const entry of pending.splice(0)) {
      try {
        writeSync(entry.fd, entry.text);
      } catch {
        // Nothing left to report to.
      }
    }
  });
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (order[level] < order[minLevel]) return;
    pending.push({ fd: order[level] >= order.warn ? 2 : 1, text: formatLine(level, message, fields) + '\n' });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    debug: (message, fields) => write('debug', message, fields),
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
  };
}

/** Prefixes every message (e.g. with the component name). */
export function childLogger(log: Logger, prefix: string): Logger {
  return {
    debug: (message, fields) => log.debug(`${prefix} ${message}`, fields),
    info: (message, fields) => log.info(`${prefix} ${message}`, fields),
    warn: (message, fields) => log.warn(`${prefix} ${message}`, fields),
    error: (message, fields) => log.error(`${prefix} ${message}`, fields),
  };
}
