import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';

/** Small text formatters shared by the console's pages (numbers, instants, durations, status chips). */

/** A number to four significant digits (exponent form for very small or large values); `—` for none. */
export function fmt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const a = Math.abs(n);
  if (a !== 0 && (a < 0.001 || a >= 1e6)) return n.toExponential(2);
  return Number(n.toPrecision(4)).toString();
}

/** An ISO instant as `2026-12-05 08:11:14 UTC`; `—` for none. */
export function when(iso: string | undefined | null): string {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

/** A duration for people: `42 s`, `7 min`, `3 h`, `2 days`; under 10 s with one decimal. */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 10_000) return `${(abs / 1000).toFixed(1)} s`;
  const s = Math.round(abs / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}

/** A status or stop reason as people read it (`waiting_for_approval` → `waiting for approval`). */
export function words(code: string): string {
  return code.replace(/_/g, ' ');
}

/** A run or step status chip; `data-run-status` marks it for the live-status script. */
export function statusChip(status: string, runId?: string): SafeHtml {
  return runId
    ? markup`<span class="chip ${status}" data-status="${status}" data-run-status="${runId}">${words(status)}</span>`
    : markup`<span class="chip ${status}">${words(status)}</span>`;
}
