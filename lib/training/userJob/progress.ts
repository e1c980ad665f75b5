/**
 * `progress.json`: what a running user job may tell about itself. The job writes it into
 * SLUICE_OUTPUT, as often as it likes (best: a temporary file renamed over it, so it is never read
 * half-written); the local worker reads it about once a second into the job's status (progress,
 * iteration, latest metrics) and its metrics history. Every field is optional:
 *
 *   { "fraction": 0.4, "iteration": 12, "metrics": { "loss": 0.31, "validation_loss": 0.35 } }
 *
 * `fraction` is in [0, 1]; `iteration` a non-negative integer; `metrics` name → finite number.
 * A file that does not parse, or holds anything else, is ignored (the job is never failed for it).
 * The file stays in the model folder, so it is part of the model's digest like any other file.
 */
export interface JobProgress {
  fraction?: number;
  iteration?: number;
  metrics?: Record<string, number>;
}

/** What the user-job worker prints on stderr when the job's process starts: the group the backend kills if the worker dies. */
export const USER_PGID_MARKER = 'sluice-user-pgid';

const MAX_METRICS = 100;

export function parseProgress(text: string): JobProgress | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const { fraction, iteration, metrics } = doc as Record<string, unknown>;
  const out: JobProgress = {};
  if (fraction !== undefined) {
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) return undefined;
    out.fraction = fraction;
  }
  if (iteration !== undefined) {
    if (typeof iteration !== 'number' || !Number.isSafeInteger(iteration) || iteration < 0) return undefined;
    out.iteration = iteration;
  }
  if (metrics !== undefined) {
    if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) return undefined;
    const entries = Object.entries(metrics as Record<string, unknown>);
    if (entries.length > MAX_METRICS) return undefined;
    const m: Record<string, number> = {};
    for (const [k, v] of entries) {
      if (k === '' || k.length > 200 || typeof v !== 'number' || !Number.isFinite(v)) return undefined;
      m[k] = v;
    }
    out.metrics = m;
  }
  return out;
}

/** The user's process group a worker announced on its stderr, if this line is that announcement. */
export function announcedGroup(line: string): number | undefined {
  const m = new RegExp(`^${USER_PGID_MARKER} (\\d+)$`).exec(line.trim());
  return m ? Number(m[1]) : undefined;
}
