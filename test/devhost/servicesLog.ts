import type { Logger } from '../../devhost/contracts';

/** A Logger that keeps lines for assertions and prints only warnings and errors. */
export function memoryLog(): Logger & {
  lines: { level: string; message: string; fields?: Record<string, unknown> }[];
} {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
      if (level === 'warn' || level === 'error') console.warn(`[${level}] ${message}`, fields ?? '');
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
