import { randomBytes } from 'node:crypto';

/** A run id people can read: pipeline, UTC time, and 6 random hex digits (`wages-20260301T120000Z-a1b2c3`). */
export function newRunId(pipeline: string, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${pipeline}-${stamp}-${randomBytes(3).toString('hex')}`;
}
