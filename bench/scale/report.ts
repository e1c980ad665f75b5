/**
 * Figures of `bench:scale` from the runs it measured: per offered load, how many runs finished,
 * the throughput reached, and the orchestration step latency; where that latency doubled; and a
 * table, an ASCII chart and an SVG chart of latency against load. Pure: no I/O.
 */

/** One run as the bench saw it (times in ms since the epoch, from the run document). */
export interface RunSample {
  level: number;
  runId: string;
  status: string;
  createdAt: number;
  endedAt: number;
  /** Steps with both ends: name → duration in ms. */
  steps: Record<string, number>;
}

export interface LevelFigures {
  /** Offered load in runs per minute. */
  rate: number;
  started: number;
  succeeded: number;
  failed: number;
  /** Runs that finished per minute of the level's span (first start to last end). */
  throughput: number;
  /** Median and 90th percentile of the per-run step latency, ms. */
  stepP50: number;
  stepP90: number;
  /** Median run wall time, ms. */
  wallP50: number;
}

/** Steps whose time is the orchestration's own (train is the job, approve the reviewer). */
export const ORCHESTRATION_STEPS = ['ingest', 'validate', 'evaluate', 'deploy'] as const;

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * A run's step latency: its wall time less the training job's and the reviewer's steps, spread
 * over the other steps. It holds every activity, replay, queue wait and gap between steps the
 * orchestration itself caused, which is what grows when the host saturates.
 */
export function stepLatency(run: RunSample): number {
  const excluded = (run.steps.train ?? 0) + (run.steps.approve ?? 0);
  return Math.max(0, run.endedAt - run.createdAt - excluded) / ORCHESTRATION_STEPS.length;
}

export function levelFigures(rate: number, runs: RunSample[]): LevelFigures {
  const ok = runs.filter((r) => r.status === 'succeeded');
  const span = ok.length
    ? Math.max(...ok.map((r) => r.endedAt)) - Math.min(...runs.map((r) => r.createdAt))
    : 0;
  const latencies = ok.map(stepLatency);
  return {
    rate,
    started: runs.length,
    succeeded: ok.length,
    failed: runs.length - ok.length,
    throughput: span > 0 ? (ok.length * 60_000) / span : 0,
    stepP50: quantile(latencies, 0.5),
    stepP90: quantile(latencies, 0.9),
    wallP50: quantile(
      ok.map((r) => r.endedAt - r.createdAt),
      0.5,
    ),
  };
}

/**
 * The first offered load whose median step latency is at least twice the lightest load's, and
 * the load before it (the last one below): the machine saturates between the two. Undefined when
 * no level doubled.
 */
export function saturation(levels: LevelFigures[]): { below: LevelFigures; at: LevelFigures } | undefined {
  const base = levels[0]?.stepP50;
  if (base === undefined || !Number.isFinite(base)) return undefined;
  for (let i = 1; i < levels.length; i++) {
    const l = levels[i]!;
    if (!(l.stepP50 < 2 * base) || l.failed > 0) return { below: levels[i - 1]!, at: l };
  }
  return undefined;
}

const ms = (v: number) =>
  Number.isFinite(v) ? (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`) : '–';

export function table(levels: LevelFigures[]): string {
  const head = [
    'offered/min',
    'runs',
    'ok',
    'failed',
    'done/min',
    'step p50',
    'step p90',
    'wall p50',
    'vs lightest',
  ];
  const base = levels[0]?.stepP50 ?? NaN;
  const rows = levels.map((l) => [
    String(l.rate),
    String(l.started),
    String(l.succeeded),
    String(l.failed),
    l.throughput.toFixed(1),
    ms(l.stepP50),
    ms(l.stepP90),
    ms(l.wallP50),
    Number.isFinite(l.stepP50 / base) ? `${(l.stepP50 / base).toFixed(2)}×` : '–',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Horizontal bars of the median step latency per offered load, with the doubling line marked. */
export function asciiChart(levels: LevelFigures[], width = 50): string {
  const finite = levels.filter((l) => Number.isFinite(l.stepP50));
  if (finite.length === 0) return '(no finished runs)';
  const base = finite[0]!.stepP50;
  const max = Math.max(...finite.map((l) => l.stepP50), 2 * base);
  const col = (v: number) => Math.round((v / max) * width);
  const mark = col(2 * base);
  const lines = finite.map((l) => {
    const bar = '#'.repeat(col(l.stepP50)).padEnd(width + 1);
    const withMark = bar.slice(0, mark) + (bar[mark] === '#' ? '#' : '|') + bar.slice(mark + 1);
    return `${String(l.rate).padStart(5)}/min ${withMark} ${ms(l.stepP50)}`;
  });
  return [...lines, `${' '.repeat(10 + mark)}^ 2× the lightest load (${ms(2 * base)})`].join('\n');
}

/** A small SVG line chart of median and p90 step latency against offered load (log2 x axis). */
export function svgChart(levels: LevelFigures[], title: string): string {
  const finite = levels.filter((l) => Number.isFinite(l.stepP50));
  const W = 640;
  const H = 360;
  const pad = { l: 70, r: 20, t: 40, b: 50 };
  if (finite.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"></svg>`;
  const xs = finite.map((l) => Math.log2(l.rate));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const base = finite[0]!.stepP50;
  const yMax = Math.max(...finite.map((l) => l.stepP90), 2 * base) * 1.1;
  const x = (rate: number) => pad.l + ((Math.log2(rate) - xMin) / (xMax - xMin)) * (W - pad.l - pad.r);
  const y = (v: number) => H - pad.b - (v / yMax) * (H - pad.t - pad.b);
  const path = (pick: (l: LevelFigures) => number) =>
    finite.map((l, i) => `${i ? 'L' : 'M'}${x(l.rate).toFixed(1)},${y(pick(l)).toFixed(1)}`).join(' ');
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const ticks = finite
    .map(
      (l) =>
        `<text x="${x(l.rate).toFixed(1)}" y="${H - pad.b + 18}" text-anchor="middle" font-size="12">${l.rate}</text>`,
    )
    .join('');
  const yTicks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const v = f * yMax;
      return `<text x="${pad.l - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="12">${esc(ms(v))}</text><line x1="${pad.l}" x2="${W - pad.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`;
    })
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`,
    `<title>${esc(title)}</title>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    yTicks,
    ticks,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle" font-size="12">offered load, runs per minute (log scale)</text>`,
    `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(2 * base).toFixed(1)}" y2="${y(2 * base).toFixed(1)}" stroke="#c00" stroke-dasharray="4 4"/>`,
    `<text x="${W - pad.r}" y="${(y(2 * base) - 6).toFixed(1)}" text-anchor="end" font-size="11" fill="#c00">2× the lightest load</text>`,
    `<path d="${path((l) => l.stepP90)}" fill="none" stroke="#999" stroke-width="1.5"/>`,
    `<path d="${path((l) => l.stepP50)}" fill="none" stroke="#1f5fbf" stroke-width="2.5"/>`,
    ...finite.map(
      (l) => `<circle cx="${x(l.rate).toFixed(1)}" cy="${y(l.stepP50).toFixed(1)}" r="3.5" fill="#1f5fbf"/>`,
    ),
    `<text x="${pad.l + 8}" y="${pad.t + 4}" font-size="11" fill="#1f5fbf">median step latency</text>`,
    `<text x="${pad.l + 8}" y="${pad.t + 18}" font-size="11" fill="#999">p90</text>`,
    '</svg>',
  ].join('\n');
}
