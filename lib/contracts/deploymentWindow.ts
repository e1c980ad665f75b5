import { z } from 'zod';

/**
 * A pipeline's deployment window (`deployment.window` of the definition): approved deployments
 * happen only on these days, between these local times, in this time zone. It travels in the
 * orchestration's input, so it lives here; the pure computation is lib/pipelines/window.ts.
 */

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];

const hhmm = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'a local time HH:MM (00:00-23:59)');

export const deploymentWindowSchema = z
  .object({
    /** An IANA time zone: `Europe/Berlin`, `America/New_York`, `UTC`. */
    timeZone: z.string().refine(
      (tz) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      },
      { message: 'an IANA time zone such as Europe/Berlin or UTC' },
    ),
    /** The days the window opens on (default every day). */
    days: z
      .array(z.enum(weekdays))
      .min(1)
      .refine((d) => new Set(d).size === d.length, { message: 'lists a day twice' })
      .default([...weekdays]),
    /**
     * Local opening and closing time. `to` before `from` is a window over midnight (22:00-02:00
     * opens on each listed day at 22:00 and closes the next morning).
     */
    hours: z
      .object({ from: hhmm, to: hhmm })
      .strict()
      .refine((h) => h.from !== h.to, { message: 'from and to must differ', path: ['to'] }),
  })
  .strict();

export type DeploymentWindow = z.output<typeof deploymentWindowSchema>;
