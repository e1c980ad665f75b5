import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';
import { duration, fmt } from './format';

/**
 * The console's charts, drawn on the server as inline SVG: no client JavaScript and no library to
 * ship (pages stay a few KB and work with scripts off), nothing the strict CSP has to allow (the
 * geometry and colours are SVG attributes, not style), and each chart carries its own text
 * alternative (`<title>` and `<desc>`, referenced by aria-labelledby) with the numbers it shows.
 * Every chart scales to its container through its viewBox.
 */

const C = {
  compute: '#2352c7',
  people: '#d29a00',
  queued: '#9aa4b1',
  failed: '#c4262e',
  reference: '#9aa4b1',
  current: '#2352c7',
  champion: '#5b6573',
  candidate: '#2352c7',
  grid: '#dde1e6',
  axis: '#5b6573',
  good: '#1a7f37',
  bad: '#c4262e',
};

/** Unique-enough ids for title/desc within one page (charts are drawn in order). */
export class ChartIds {
  private n = 0;
  next(prefix: string): string {
    this.n += 1;
    return `${prefix}${this.n}`;
  }
}

function frame(
  ids: ChartIds,
  width: number,
  height: number,
  title: string,
  desc: string,
  content: SafeHtml | SafeHtml[],
): SafeHtml {
  const t = ids.next('ct');
  const d = ids.next('cd');
  return markup`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${t} ${d}" xmlns="http://www.w3.org/2000/svg"><title id="${t}">${title}</title><desc id="${d}">${desc}</desc>${content}</svg>`;
}

const r1 = (n: number): string => (Math.round(n * 10) / 10).toString();

// ---------------------------------------------------------------------------------------------
// Gantt: a run's steps over time.

export interface GanttStep {
  name: string;
  kind: 'compute' | 'people';
  status: string;
  startMs?: number;
  endMs?: number;
}

/**
 * The step timeline: one row per step (compute blue, waiting for people amber, failed red) on the
 * run's wall clock, and a first row splitting the whole run into compute, people and queued time.
 */
export function ganttChart(
  ids: ChartIds,
  run: { startMs: number; endMs: number; computeMs: number; peopleMs: number; queuedMs: number },
  steps: readonly GanttStep[],
): SafeHtml {
  const W = 720;
  const left = 92;
  const right = 12;
  const rowH = 26;
  const top = 8;
  const plot = W - left - right;
  const span = Math.max(1, run.endMs - run.startMs);
  const x = (ms: number) =>
    left + ((Math.min(Math.max(ms, run.startMs), run.endMs) - run.startMs) / span) * plot;
  const rows = steps.length + 1;
  const H = top + rows * rowH + 26;
  const parts: SafeHtml[] = [];
  // Whole run: compute, people, queued as one stacked bar (shares of the wall clock).
  let at = left;
  const y0 = top + 5;
  for (const [kind, ms] of [
    ['compute', run.computeMs],
    ['people', run.peopleMs],
    ['queued', run.queuedMs],
  ] as const) {
    const w = (ms / span) * plot;
    if (w > 0.2)
      parts.push(
        markup`<rect x="${r1(at)}" y="${y0}" width="${r1(w)}" height="16" rx="2" fill="${C[kind]}" />`,
      );
    at += w;
  }
  parts.push(markup`<text x="${left - 8}" y="${y0 + 12}" text-anchor="end" font-weight="600">run</text>`);
  steps.forEach((s, i) => {
    const y = top + (i + 1) * rowH + 5;
    parts.push(
      markup`<line x1="${left}" x2="${W - right}" y1="${y + 8}" y2="${y + 8}" stroke="${C.grid}" />`,
    );
    parts.push(markup`<text x="${left - 8}" y="${y + 12}" text-anchor="end">${s.name}</text>`);
    if (s.startMs === undefined) return;
    const x1 = x(s.startMs);
    const x2 = x(s.endMs ?? run.endMs);
    const fill = s.status === 'failed' ? C.failed : s.kind === 'people' ? C.people : C.compute;
    parts.push(
      markup`<rect x="${r1(x1)}" y="${y}" width="${r1(Math.max(2, x2 - x1))}" height="16" rx="2" fill="${fill}"${s.status === 'running' ? markup` fill-opacity="0.6"` : ''} />`,
    );
  });
  // Axis: start, middle and end, as time since the run was created.
  const axisY = top + rows * rowH + 6;
  parts.push(markup`<line x1="${left}" x2="${W - right}" y1="${axisY}" y2="${axisY}" stroke="${C.axis}" />`);
  for (const f of [0, 0.5, 1]) {
    const xx = left + f * plot;
    parts.push(
      markup`<line x1="${r1(xx)}" x2="${r1(xx)}" y1="${axisY}" y2="${axisY + 4}" stroke="${C.axis}" />`,
    );
    parts.push(
      markup`<text x="${r1(xx)}" y="${axisY + 16}" text-anchor="${f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}">${f === 0 ? '0' : `+${duration(span * f)}`}</text>`,
    );
  }
  const desc = [
    `Run wall clock ${duration(span)}: compute ${duration(run.computeMs)}, waiting for people ${duration(run.peopleMs)}, queued ${duration(run.queuedMs)}.`,
    ...steps.map((s) =>
      s.startMs === undefined
        ? `${s.name}: ${s.status}.`
        : `${s.name}: ${s.status}, ${duration((s.endMs ?? run.endMs) - s.startMs)} from +${duration(s.startMs - run.startMs)}.`,
    ),
  ].join(' ');
  return frame(ids, W, H, 'Step timeline', desc, parts);
}

// ---------------------------------------------------------------------------------------------
// Reference vs current histogram (drift).

export function histogramPair(
  ids: ChartIds,
  title: string,
  labels: readonly string[],
  reference: readonly number[],
  current: readonly number[],
): SafeHtml {
  const W = 360;
  const H = 150;
  const left = 30;
  const bottom = 32;
  const top = 8;
  const plotW = W - left - 6;
  const plotH = H - top - bottom;
  const share = (xs: readonly number[]) => {
    const t = xs.reduce((a, b) => a + b, 0) || 1;
    return xs.map((v) => v / t);
  };
  const ref = share(reference);
  const cur = share(current);
  const max = Math.max(0.01, ...ref, ...cur);
  const n = labels.length || 1;
  const slot = plotW / n;
  const bar = Math.max(1, slot * 0.38);
  const parts: SafeHtml[] = [
    markup`<line x1="${left}" x2="${W - 6}" y1="${top + plotH}" y2="${top + plotH}" stroke="${C.axis}" />`,
    markup`<text x="${left - 4}" y="${top + 9}" text-anchor="end">${Math.round(max * 100)}%</text>`,
    markup`<text x="${left - 4}" y="${top + plotH}" text-anchor="end">0</text>`,
  ];
  labels.forEach((label, i) => {
    const x = left + i * slot + slot * 0.1;
    const hr = (ref[i]! / max) * plotH;
    const hc = (cur[i]! / max) * plotH;
    parts.push(
      markup`<rect x="${r1(x)}" y="${r1(top + plotH - hr)}" width="${r1(bar)}" height="${r1(hr)}" fill="${C.reference}" />`,
    );
    parts.push(
      markup`<rect x="${r1(x + bar)}" y="${r1(top + plotH - hc)}" width="${r1(bar)}" height="${r1(hc)}" fill="${C.current}" />`,
    );
    // Label every bin when there is room, else every other one.
    if (n <= 8 || i % 2 === 0) {
      const short = label.length > 9 ? `${label.slice(0, 8)}…` : label;
      parts.push(
        markup`<text x="${r1(left + i * slot + slot / 2)}" y="${top + plotH + 13}" text-anchor="middle" font-size="9">${short}</text>`,
      );
    }
  });
  parts.push(
    markup`<rect x="${left}" y="${H - 11}" width="9" height="9" fill="${C.reference}" /><text x="${left + 13}" y="${H - 3}">reference</text><rect x="${left + 80}" y="${H - 11}" width="9" height="9" fill="${C.current}" /><text x="${left + 93}" y="${H - 3}">current</text>`,
  );
  const desc = labels
    .map((l, i) => `${l}: reference ${(ref[i]! * 100).toFixed(1)}%, current ${(cur[i]! * 100).toFixed(1)}%`)
    .join('; ');
  return frame(ids, W, H, title, `Share of rows per bin. ${desc}.`, parts);
}

// ---------------------------------------------------------------------------------------------
// Candidate vs champion per metric, with confidence intervals.

export interface IntervalRow {
  label: string;
  value: number | null;
  lower?: number | null;
  upper?: number | null;
  role: 'candidate' | 'champion';
}

/** Points with whiskers on one shared axis: each model's value of a metric and its interval. */
export function intervalChart(ids: ChartIds, title: string, rows: readonly IntervalRow[]): SafeHtml {
  const W = 360;
  const rowH = 24;
  const left = 84;
  const right = 14;
  const H = rows.length * rowH + 24;
  const values = rows
    .flatMap((r) => [r.value, r.lower, r.upper])
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (hi - lo < 1e-12)
    [lo, hi] = [lo - 0.5 * (Math.abs(lo) || 1) * 0.01, hi + 0.5 * (Math.abs(hi) || 1) * 0.01];
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * (W - left - right);
  const parts: SafeHtml[] = [];
  rows.forEach((r, i) => {
    const y = 10 + i * rowH + 6;
    const color = C[r.role];
    parts.push(markup`<text x="${left - 8}" y="${y + 4}" text-anchor="end">${r.label}</text>`);
    parts.push(markup`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="${C.grid}" />`);
    if (typeof r.lower === 'number' && typeof r.upper === 'number') {
      parts.push(
        markup`<line x1="${r1(x(r.lower))}" x2="${r1(x(r.upper))}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="3" stroke-linecap="round" />`,
      );
    }
    if (typeof r.value === 'number')
      parts.push(markup`<circle cx="${r1(x(r.value))}" cy="${y}" r="5" fill="${color}" />`);
  });
  const axisY = 10 + rows.length * rowH;
  parts.push(markup`<text x="${left}" y="${axisY + 8}" text-anchor="start">${fmt(lo)}</text>`);
  parts.push(markup`<text x="${W - right}" y="${axisY + 8}" text-anchor="end">${fmt(hi)}</text>`);
  const desc = rows
    .map(
      (r) =>
        `${r.label} ${fmt(r.value)}${typeof r.lower === 'number' && typeof r.upper === 'number' ? ` (interval ${fmt(r.lower)} to ${fmt(r.upper)})` : ''}`,
    )
    .join('; ');
  return frame(ids, W, H, title, `${desc}.`, parts);
}

// ---------------------------------------------------------------------------------------------
// Training curve.

export interface Series {
  name: string;
  points: readonly { x: number; y: number }[];
  color?: string;
}

/** Lines over a shared x (iterations) and y axis, with the ends of both axes labelled. */
export function lineChart(ids: ChartIds, title: string, xLabel: string, series: readonly Series[]): SafeHtml {
  const W = 560;
  const H = 200;
  const left = 52;
  const right = 10;
  const top = 10;
  const bottom = 40;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const y0 = Math.min(...ys);
  const y1 = Math.max(...ys);
  const sx = (v: number) => left + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - left - right);
  const sy = (v: number) => top + (y1 > y0 ? 1 - (v - y0) / (y1 - y0) : 0.5) * (H - top - bottom);
  const colors = [C.current, C.people, C.good, C.failed];
  const parts: SafeHtml[] = [
    markup`<line x1="${left}" x2="${left}" y1="${top}" y2="${H - bottom}" stroke="${C.axis}" />`,
    markup`<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="${C.axis}" />`,
    markup`<text x="${left - 4}" y="${top + 8}" text-anchor="end">${fmt(y1)}</text>`,
    markup`<text x="${left - 4}" y="${H - bottom}" text-anchor="end">${fmt(y0)}</text>`,
    markup`<text x="${left}" y="${H - bottom + 14}" text-anchor="start">${fmt(x0)}</text>`,
    markup`<text x="${W - right}" y="${H - bottom + 14}" text-anchor="end">${fmt(x1)}</text>`,
    markup`<text x="${(left + W - right) / 2}" y="${H - bottom + 14}" text-anchor="middle">${xLabel}</text>`,
  ];
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (pts.length === 0) return;
    const color = s.color ?? colors[i % colors.length]!;
    const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${r1(sx(p.x))} ${r1(sy(p.y))}`).join(' ');
    parts.push(markup`<path d="${d}" fill="none" stroke="${color}" stroke-width="2" />`);
    parts.push(
      markup`<rect x="${left + i * 130}" y="${H - 13}" width="10" height="10" fill="${color}" /><text x="${left + i * 130 + 14}" y="${H - 4}">${s.name}</text>`,
    );
  });
  const desc = series
    .map((s) => {
      const p = s.points;
      if (p.length === 0) return `${s.name}: no points`;
      const first = p[0]!;
      const last = p[p.length - 1]!;
      const min = p.reduce((a, b) => (b.y < a.y ? b : a));
      return `${s.name}: ${fmt(first.y)} at ${xLabel} ${fmt(first.x)}, lowest ${fmt(min.y)} at ${fmt(min.x)}, ${fmt(last.y)} at ${fmt(last.x)}`;
    })
    .join('; ');
  return frame(ids, W, H, title, `${desc}.`, parts);
}

// ---------------------------------------------------------------------------------------------
// Bars against a limit (monitoring: drift per feature, latency, error rate).

export interface BarRow {
  label: string;
  value: number | null;
  /** The threshold the value is judged against, drawn as a tick on the row. */
  limit?: number | null;
  /** Drawn red: the value crossed its limit. */
  bad?: boolean;
}

/**
 * Horizontal bars from zero on one shared axis, one row per label, each with its limit as a dark
 * tick when it has one. A row without a value shows `—` and no bar.
 */
export function barChart(ids: ChartIds, title: string, rows: readonly BarRow[], unit = ''): SafeHtml {
  const W = 560;
  const rowH = 22;
  const left = 120;
  const right = 70;
  const top = 6;
  const H = top + rows.length * rowH + 18;
  const numbers = rows
    .flatMap((r) => [r.value, r.limit])
    .filter((v): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0);
  const max = numbers.length ? Math.max(...numbers) * 1.08 : 1;
  const x = (v: number) => left + (Math.max(0, v) / max) * (W - left - right);
  const parts: SafeHtml[] = [];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const short = r.label.length > 18 ? `${r.label.slice(0, 17)}…` : r.label;
    parts.push(markup`<text x="${left - 8}" y="${y + 14}" text-anchor="end">${short}</text>`);
    const has = typeof r.value === 'number' && Number.isFinite(r.value);
    if (has) {
      const w = Math.max(1, x(r.value!) - left);
      parts.push(
        markup`<rect x="${left}" y="${y + 4}" width="${r1(w)}" height="13" rx="2" fill="${r.bad ? C.bad : C.current}" />`,
      );
    }
    if (typeof r.limit === 'number' && Number.isFinite(r.limit)) {
      const lx = r1(x(r.limit));
      parts.push(
        markup`<line x1="${lx}" x2="${lx}" y1="${y + 1}" y2="${y + 20}" stroke="${C.axis}" stroke-width="2" />`,
      );
    }
    parts.push(
      markup`<text x="${W - right + 6}" y="${y + 14}">${has ? `${fmt(r.value)}${unit}` : '—'}</text>`,
    );
  });
  const axisY = top + rows.length * rowH + 2;
  parts.push(markup`<line x1="${left}" x2="${W - right}" y1="${axisY}" y2="${axisY}" stroke="${C.axis}" />`);
  parts.push(markup`<text x="${left}" y="${axisY + 13}" text-anchor="start">0</text>`);
  parts.push(markup`<text x="${W - right}" y="${axisY + 13}" text-anchor="end">${fmt(max)}${unit}</text>`);
  const desc = rows
    .map(
      (r) =>
        `${r.label} ${fmt(r.value)}${unit}${typeof r.limit === 'number' ? ` (limit ${fmt(r.limit)}${unit}${r.bad ? ', crossed' : ''})` : ''}`,
    )
    .join('; ');
  return frame(ids, W, H, title, `${desc}.`, parts);
}
