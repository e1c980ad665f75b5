import type { SafeHtml } from '../../approval/html';
import { markup } from '../../approval/html';
import { fmt } from '../format';

/**
 * A metric across model versions as an inline SVG drawn on the server: one point per version, a
 * whisker for its confidence interval where the evaluation computed one, the line joining the
 * points. Geometry is attributes only (the console's CSP allows no inline style), the numbers are
 * in a <title> per point and in the table beside the chart, so the chart is never the only way in.
 */

export interface TrendPoint {
  version: number;
  value: number;
  ci?: readonly [number, number];
  /** Marks the version production serves. */
  current?: boolean;
}

const W = 640;
const H = 200;
const PAD = { left: 52, right: 16, top: 14, bottom: 30 };

function niceTicks(min: number, max: number, count = 4): number[] {
  if (min === max) return [min];
  const step = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(step));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step) ?? step;
  const out: number[] = [];
  for (let t = Math.ceil(min / nice) * nice; t <= max + nice * 1e-9; t += nice)
    out.push(Number(t.toPrecision(12)));
  return out;
}

export function trendChart(metric: string, points: readonly TrendPoint[]): SafeHtml {
  const pts = [...points].filter((p) => Number.isFinite(p.value)).sort((a, b) => a.version - b.version);
  if (pts.length === 0) return markup``;
  const values = pts.flatMap((p) => [p.value, ...(p.ci ?? [])]).filter(Number.isFinite);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.05 || 0.05;
    lo -= pad;
    hi += pad;
  }
  const span = hi - lo;
  lo -= span * 0.08;
  hi += span * 0.08;
  const x = (i: number) =>
    pts.length === 1
      ? (PAD.left + W - PAD.right) / 2
      : PAD.left + (i * (W - PAD.left - PAD.right)) / (pts.length - 1);
  const y = (v: number) => PAD.top + ((hi - v) * (H - PAD.top - PAD.bottom)) / (hi - lo);
  const r = (n: number) => n.toFixed(1);
  const ticks = niceTicks(lo, hi);
  const line = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${r(x(i))},${r(y(p.value))}`).join(' ');
  const label = `${metric} by model version: ${pts
    .map((p) => `v${p.version} ${fmt(p.value)}${p.ci ? ` (CI ${fmt(p.ci[0])} to ${fmt(p.ci[1])})` : ''}`)
    .join('; ')}`;
  return markup`<svg class="chart trend" viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}" data-metric="${metric}">
${ticks.map(
  (t) =>
    markup`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${r(y(t))}" y2="${r(y(t))}" stroke="#dde1e6" stroke-width="1"/><text x="${PAD.left - 6}" y="${r(y(t) + 4)}" text-anchor="end" fill="#5b6573">${fmt(t)}</text>`,
)}
<path d="${line}" fill="none" stroke="#2352c7" stroke-width="2"/>
${pts.map((p, i) => {
  const cx = r(x(i));
  const whisker = p.ci
    ? markup`<line x1="${cx}" x2="${cx}" y1="${r(y(p.ci[1]))}" y2="${r(y(p.ci[0]))}" stroke="#5b6573" stroke-width="1.5"/><line x1="${r(x(i) - 5)}" x2="${r(x(i) + 5)}" y1="${r(y(p.ci[1]))}" y2="${r(y(p.ci[1]))}" stroke="#5b6573" stroke-width="1.5"/><line x1="${r(x(i) - 5)}" x2="${r(x(i) + 5)}" y1="${r(y(p.ci[0]))}" y2="${r(y(p.ci[0]))}" stroke="#5b6573" stroke-width="1.5"/>`
    : '';
  return markup`<g class="pt" data-version="${p.version}" data-value="${p.value}">${whisker}<circle cx="${cx}" cy="${r(y(p.value))}" r="${p.current ? 6 : 4}" fill="${p.current ? '#1a7f37' : '#2352c7'}" stroke="#fff" stroke-width="1.5"><title>v${p.version}: ${fmt(p.value)}${p.ci ? ` (CI ${fmt(p.ci[0])} to ${fmt(p.ci[1])})` : ''}${p.current ? ', in production' : ''}</title></circle><text x="${cx}" y="${H - 10}" text-anchor="middle" fill="#5b6573">v${p.version}</text></g>`;
})}
</svg>`;
}
