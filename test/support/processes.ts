import { readFileSync } from 'node:fs';

/**
 * Running: signalable and not a zombie. A process whose parent died is reparented to PID 1, and in a
 * container PID 1 may never reap it, so `kill(pid, 0)` alone says a killed process is still there.
 */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Polls until the process is gone or a zombie; bounded by `withinMs`. */
export async function gone(pid: number, withinMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (running(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return !running(pid);
}
